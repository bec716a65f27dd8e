using System.Text.RegularExpressions;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Architecture;

/// <summary>
/// The agent's folders are its layers: a shared kernel (snapshot, sources, stores, options) that features depend
/// on, features that depend on the kernel, <c>Interop</c> and only the features their design calls for, and a
/// composition root (<c>Hosting</c>, <c>Cli</c>) that depends on features. The sources are scanned: a new cycle,
/// a feature reaching into the composition root, or the kernel reaching into a feature fails here.
/// </summary>
public sealed partial class LayeringTests
{
    private static readonly string[] CompositionRoot = ["Hosting", "Cli"];

    /// <summary>Folder → the folders its sources name (by using directive or fully qualified name).</summary>
    internal static Dictionary<string, SortedSet<string>> FolderGraph()
    {
        var agent = Path.Combine(TestEnvironment.RepositoryRoot, "agent");
        var folders = Directory.GetDirectories(agent).Select(Path.GetFileName).Where(d => d is not ("bin" or "obj")).ToHashSet(StringComparer.Ordinal);
        var graph = folders.ToDictionary(f => f!, _ => new SortedSet<string>(StringComparer.Ordinal), StringComparer.Ordinal);
        foreach (var folder in folders)
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(agent, folder!), "*.cs", SearchOption.AllDirectories))
            {
                foreach (Match m in Reference().Matches(File.ReadAllText(file)))
                {
                    var target = m.Groups["folder"].Value;
                    if (target != folder && folders.Contains(target))
                    {
                        graph[folder!].Add(target);
                    }
                }
            }
        }

        return graph;
    }

    [Fact]
    public void The_folders_of_the_agent_have_no_dependency_cycle()
    {
        var graph = FolderGraph();
        var cycles = new List<string>();
        foreach (var start in graph.Keys)
        {
            // A path from a folder back to itself.
            var stack = new Stack<(string Node, List<string> Path)>();
            stack.Push((start, [start]));
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (stack.Count > 0)
            {
                var (node, path) = stack.Pop();
                foreach (var next in graph[node])
                {
                    if (next == start)
                    {
                        cycles.Add(string.Join(" → ", path.Append(start)));
                    }
                    else if (seen.Add(next))
                    {
                        stack.Push((next, [.. path, next]));
                    }
                }
            }
        }

        Assert.True(cycles.Count == 0, "dependency cycles between folders:\n" + string.Join('\n', cycles.Distinct()));
        Assert.True(graph.Count >= 10, "the scan found the folders: " + string.Join(", ", graph.Keys));
    }

    [Fact]
    public void The_kernel_depends_on_no_feature_and_no_feature_on_the_composition_root()
    {
        var graph = FolderGraph();
        Assert.Empty(graph["Kernel"]);
        foreach (var (folder, targets) in graph.Where(g => !CompositionRoot.Contains(g.Key)))
        {
            Assert.True(!targets.Any(t => CompositionRoot.Contains(t)), $"{folder} depends on the composition root: {string.Join(", ", targets)}");
            if (folder is not ("Kernel" or "Interop"))
            {
                Assert.True(targets.Contains("Kernel"), $"{folder} does not build on the kernel: {string.Join(", ", targets)}");
            }
        }
    }

    [GeneratedRegex(@"(?:using\s+(?:static\s+)?|\b(?<!using\s)(?<!namespace\s))VastHostAgent\.(?<folder>[A-Z]\w*)\b")]
    private static partial Regex Reference();
}
