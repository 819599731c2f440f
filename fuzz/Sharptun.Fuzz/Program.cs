using Sharptun.Fuzz;

// Sharptun.Fuzz TARGET            afl++ runs this (scripts/fuzz.sh): SharpFuzz's fork server, one input per run
// Sharptun.Fuzz TARGET FILE...    runs the target on each file in-process (replaying a crash afl++ saved)
// Sharptun.Fuzz seeds DIR         writes the seed corpus (DIR/TARGET/NAME) made with Sharptun's own code
if (args.Length == 2 && args[0] == "seeds")
{
    SeedCorpus.Write(args[1]);
    return 0;
}

if (args.Length == 0 || !FuzzTargets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"usage: Sharptun.Fuzz TARGET [FILE...] | seeds DIR; targets: {string.Join(", ", FuzzTargets.All.Keys)}");
    return 2;
}

if (args.Length > 1)
{
    foreach (var file in args.Skip(1))
    {
        Console.WriteLine($"{file}: {(target(File.ReadAllBytes(file)) ? "accepted" : "rejected")}");
    }

    return 0;
}

SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target(buffer.ToArray());
});
return 0;
