using System.Text.RegularExpressions;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Management;

/// <summary>Every change on Vast goes through the one mutation path, with one documented result vocabulary.</summary>
public sealed partial class MutationPathTests
{
    private static readonly string[] MutatingMethods =
    [
        "ListMachineAsync", "UnlistMachineAsync", "SetMinBidAsync", "SetDefaultJobAsync", "RemoveDefaultJobAsync",
        "ScheduleMaintenanceAsync", "CancelMaintenanceAsync", "CleanupAsync",
    ];

    [Fact]
    public void Nothing_but_the_mutation_path_calls_a_mutating_method_of_the_Vast_client()
    {
        var agent = Path.Combine(TestEnvironment.RepositoryRoot, "agent");
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(agent, "*.cs", SearchOption.AllDirectories)
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                                 && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            var relative = Path.GetRelativePath(agent, file);
            if (relative is "Management/MutationPath.cs" or "Vast/VastClient.cs")
            {
                continue;
            }

            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                foreach (var method in MutatingMethods)
                {
                    if (lines[i].Contains("." + method + "(", StringComparison.Ordinal))
                    {
                        offenders.Add($"{relative}:{i + 1}: {lines[i].Trim()}");
                    }
                }
            }
        }

        Assert.True(offenders.Count == 0, "mutating Vast calls outside MutationPath:\n" + string.Join('\n', offenders));

        // And the path itself calls each of them (the scan looks for the right names).
        var path = File.ReadAllText(Path.Combine(agent, "Management", "MutationPath.cs"));
        Assert.All(MutatingMethods, m => Assert.Contains("client." + m + "(", path, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_result_is_snake_case_and_documented_for_the_journal_and_the_metric()
    {
        var journal = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "journal.md"));
        var metrics = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "metrics.md"));
        foreach (var result in Enum.GetValues<MutationResult>())
        {
            var name = result.Name();
            Assert.Matches(SnakeCase(), name);
            Assert.Contains($"`{name}`", journal, StringComparison.Ordinal);
            Assert.Contains($"`{name}`", metrics, StringComparison.Ordinal);
        }

        Assert.Equal(Enum.GetValues<MutationResult>().Length, Enum.GetValues<MutationResult>().Select(r => r.Name()).Distinct().Count());
    }

    [GeneratedRegex("^[a-z]+(_[a-z]+)*$")]
    private static partial Regex SnakeCase();
}
