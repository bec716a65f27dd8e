using BenchmarkDotNet.Running;
using VastHostAgent.Benchmarks;

// `--figures`: each hot path timed with a Stopwatch (median of many runs) and printed one per line, for
// scripts/bench.sh. Anything else goes to BenchmarkDotNet (e.g. --filter '*' --job short).
if (args.Length > 0 && args[0] == "--figures")
{
    return Figures.Run();
}

BenchmarkSwitcher.FromAssembly(typeof(Figures).Assembly).Run(args);
return 0;
