namespace RAllocator.Cli;

/// <summary>The process exit codes of <c>rallocator</c>.</summary>
public static class ExitCodes
{
    /// <summary>The command did what was asked (for <c>check</c>: the image is consistent).</summary>
    public const int Ok = 0;

    /// <summary>The command ran and failed: an invalid or inconsistent image, a file that cannot be used, a failed operation.</summary>
    public const int Failed = 1;

    /// <summary>The command line is wrong: a missing or malformed argument or option, or a value out of range.</summary>
    public const int Usage = 2;
}

/// <summary>A wrong command line found after parsing (exit code 2). The message names the argument or option.</summary>
internal sealed class CliUsageException(string message) : Exception(message);

/// <summary>A command that failed for a reason the user can act on (exit code 1). The message names the file and the error.</summary>
internal sealed class CliFailureException(string message, Exception? innerException = null) : Exception(message, innerException);
