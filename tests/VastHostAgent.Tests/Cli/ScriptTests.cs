using System.Diagnostics;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Cli;

/// <summary>The shell scripts a host runs are shellcheck-clean, and CI runs exactly the README's test command.</summary>
public sealed class ScriptTests
{
    /// <summary>Build outputs and third-party trees: not ours to lint.</summary>
    private static readonly HashSet<string> NotOurs = ["bin", "obj", "node_modules", ".git", "artifacts", "dist", "TestResults", "build"];

    [Fact]
    public async Task Every_shell_script_passes_shellcheck()
    {
        var root = TestEnvironment.RepositoryRoot;
        var scripts = Directory.GetFiles(Path.Combine(root, "scripts"), "*.sh")
            .Append(Path.Combine(root, "install.sh"))
            .Append(Path.Combine(root, ".ci", "run"))
            .Append(Path.Combine(root, "tests", "grafana-schema", "check.sh"))
            .Append(Path.Combine(root, "packaging", "alertmanager", "inline-secrets.sh"))
            .Concat(new[] { "postinst", "prerm", "postrm" }.Select(s => Path.Combine(root, "packaging", "deb", s)))
            .Select(s => Path.GetRelativePath(root, s))
            .ToList();

        // The list is every shell script in the repository: one added anywhere else is linted too, or this fails.
        Assert.Equal(ShellScriptsUnder(root, root).Order(StringComparer.Ordinal), scripts.Order(StringComparer.Ordinal));

        var psi = new ProcessStartInfo("shellcheck") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        psi.ArgumentList.Add("-x");
        foreach (var s in scripts)
        {
            psi.ArgumentList.Add(s);
        }

        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, output);
    }

    /// <summary>Files under <paramref name="directory"/> whose first line is a sh or bash shebang, relative to <paramref name="root"/>.</summary>
    private static IEnumerable<string> ShellScriptsUnder(string root, string directory)
    {
        foreach (var file in Directory.EnumerateFiles(directory))
        {
            using var reader = new StreamReader(file);
            var first = reader.ReadLine() ?? "";
            if (first.StartsWith("#!", StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(first, @"[/ ](ba|da)?sh\b"))
            {
                yield return Path.GetRelativePath(root, file);
            }
        }

        foreach (var sub in Directory.EnumerateDirectories(directory).Where(d => !NotOurs.Contains(Path.GetFileName(d))))
        {
            foreach (var file in ShellScriptsUnder(root, sub))
            {
                yield return file;
            }
        }
    }

    [Fact]
    public void CI_runs_the_README_test_command_and_nothing_else()
    {
        var root = TestEnvironment.RepositoryRoot;
        var readme = File.ReadAllText(Path.Combine(root, "README.md"));
        Assert.Contains("scripts/test.sh", readme, StringComparison.Ordinal);
        Assert.Contains("scripts/demo.sh", readme, StringComparison.Ordinal);
        var commands = File.ReadAllLines(Path.Combine(root, ".ci", "run"))
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#') && !l.StartsWith("set ", StringComparison.Ordinal) && !l.StartsWith("cd ", StringComparison.Ordinal))
            .ToList();
        Assert.Equal(["exec scripts/test.sh"], commands);
    }
}
