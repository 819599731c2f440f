using Sharptun.Testing.Memory;

// The NetStack memory benchmark (bench/netstack-memory.sh, docs/benchmarks.md "NetStack memory"). The workload lives in
// the test kit (tests/Sharptun.Testing/Memory), which the interop test's budget check runs too (through
// tests/Sharptun.TestDaemon), so no test references this benchmark project.
return NetStackMemoryBenchmark.Run(args);
