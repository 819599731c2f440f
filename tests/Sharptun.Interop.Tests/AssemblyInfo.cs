// Interop tests create network namespaces, veth pairs and daemons: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
