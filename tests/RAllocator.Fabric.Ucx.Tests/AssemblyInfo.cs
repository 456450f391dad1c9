// One collection for the whole assembly, so test classes run one at a time. With classes in parallel, a blade
// (UCX context) torn down in one test while another test's contexts are busy in the same process crashed libucs
// 1.13.1 with SIGSEGV about one run in three. Production creates and destroys contexts one per connection, and
// blades and nodes live in different processes.
[assembly: CollectionBehavior(CollectionBehavior.CollectionPerAssembly)]
