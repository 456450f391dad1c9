using System.Net.Sockets;

namespace RAllocator.Fabric.Tcp;

/// <summary>
/// The accept loop of RAllocator's TCP services (blade servers, verbs exporters, hint services): accepts until its
/// owner stops it, handing each connection over without waiting on it.
/// </summary>
public static class TcpAcceptLoop
{
    /// <summary>
    /// Accepts connections on <paramref name="listener"/> until <paramref name="stopping"/> is cancelled or the
    /// listener is stopped, passing each to <paramref name="accepted"/>. Stopping ends the loop quietly: the
    /// cancellation, a disposed listener and the socket error an interrupted accept raises all mean "stopped", since
    /// which of them surfaces depends on how the stop races the accept.
    /// </summary>
    /// <param name="listener">A started listener.</param>
    /// <param name="accepted">
    /// Takes ownership of the connection (serves, tracks or refuses it). It runs on the loop, so it should start any
    /// long work elsewhere and return; an exception it throws ends the loop and faults the returned task.
    /// </param>
    /// <param name="stopping">Cancelled when the owner stops.</param>
    /// <returns>Completes when the loop has stopped.</returns>
    public static async Task RunAsync(TcpListener listener, Action<TcpClient> accepted, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(accepted);
        while (!stopping.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            accepted(client);
        }
    }
}
