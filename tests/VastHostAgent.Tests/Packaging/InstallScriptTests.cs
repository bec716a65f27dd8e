using System.Net;
using System.Net.Sockets;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// install.sh run for real into a temporary root (<c>--root</c>): real useradd/usermod/userdel with
/// <c>--prefix</c>, real files and modes; only <c>systemctl</c> is a recording stand-in on PATH.
/// </summary>
public sealed class InstallScriptTests
{
    private const string Key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// <summary>A temporary target root for install.sh, with a recording systemctl on PATH (also used by PackageTests).</summary>
    internal sealed class Rig
    {
        public required string Root { get; init; }
        public required string Bin { get; init; }
        public required string SystemctlLog { get; init; }
        public required string KeyFile { get; init; }

        public string P(string path) => Path.Combine(Root, path.TrimStart('/'));

        public string[] SystemctlCalls => File.Exists(SystemctlLog) ? File.ReadAllLines(SystemctlLog) : [];

        /// <summary>A stand-in binary that answers --version like the agent.</summary>
        public string Binary(string version)
        {
            var path = Path.Combine(Bin, "agent-" + version);
            File.WriteAllText(path, $"#!/bin/sh\n[ \"$1\" = --version ] && echo 'vast-host-agent {version}'\n");
            File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
            return path;
        }

        public Task<(int ExitCode, string Stdout, string Stderr)> InstallAsync(params string[] args) =>
            RunAsync(Path.Combine(TestEnvironment.RepositoryRoot, "install.sh"), args);

        /// <summary>Runs an install.sh (the repository's or a tarball's) into this root.</summary>
        public Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string script, params string[] args) =>
            Tools.RunAsync(script, ["--root", Root, .. args],
                new Dictionary<string, string?>
                {
                    ["PATH"] = Bin + ":" + Environment.GetEnvironmentVariable("PATH"),
                    ["FAKE_SYSTEMCTL_LOG"] = SystemctlLog,
                },
                Path.GetDirectoryName(script));
    }

    /// <summary>A minimal Ubuntu-like root: account files (with a docker group), systemd running.</summary>
    internal static Rig NewRig(bool systemd = true, bool nvidia = true)
    {
        var root = TestEnvironment.NewTempDirectory("installroot");
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n");
        File.WriteAllText(Path.Combine(root, "etc", "group"), "root:x:0:\ndocker:x:997:ubuntu\nubuntu:x:1000:\n");
        File.WriteAllText(Path.Combine(root, "etc", "shadow"), "root:*:19000:0:99999:7:::\nubuntu:!:19000:0:99999:7:::\n");
        File.WriteAllText(Path.Combine(root, "etc", "gshadow"), "root:*::\ndocker:!::ubuntu\nubuntu:!::\n");
        if (systemd)
        {
            Directory.CreateDirectory(Path.Combine(root, "run", "systemd", "system"));
        }

        if (nvidia)
        {
            Directory.CreateDirectory(Path.Combine(root, "proc", "driver", "nvidia"));
            File.WriteAllText(Path.Combine(root, "proc", "driver", "nvidia", "version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\n");
        }

        var bin = TestEnvironment.NewTempDirectory("installbin");
        var log = Path.Combine(bin, "systemctl.log");
        // Records every call; "is-active" says inactive (the service is not running in the temp root).
        File.WriteAllText(Path.Combine(bin, "systemctl"), "#!/bin/sh\necho \"$*\" >> \"$FAKE_SYSTEMCTL_LOG\"\n[ \"$1\" = is-active ] && exit 3\nexit 0\n");
        File.SetUnixFileMode(Path.Combine(bin, "systemctl"), (UnixFileMode)0b111_101_101);
        var keyFile = Path.Combine(bin, "vast.key");
        File.WriteAllText(keyFile, Key + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return new Rig { Root = root, Bin = bin, SystemctlLog = log, KeyFile = keyFile };
    }

    private static string Mode(string path) => Convert.ToString((int)File.GetUnixFileMode(path), 8);

    private static string[] Account(Rig rig, string file, string name) =>
        File.ReadAllLines(rig.P("/etc/" + file)).Single(l => l.StartsWith(name + ":", StringComparison.Ordinal)).Split(':');

    private static List<string> Tree(Rig rig) =>
        Directory.EnumerateFileSystemEntries(rig.Root, "*", SearchOption.AllDirectories)
            .Where(p => !p.Contains("/etc/", StringComparison.Ordinal) || p.Contains("vast-host-agent", StringComparison.Ordinal))
            .Select(p => Path.GetRelativePath(rig.Root, p) + " " + Mode(p) + " " + (File.Exists(p) ? File.ReadAllText(p).GetHashCode(StringComparison.Ordinal) : 0))
            .Order(StringComparer.Ordinal)
            .ToList();

    [Fact]
    public async Task A_fresh_install_creates_the_user_binary_unit_config_and_a_0600_key_then_enables_and_starts_the_service()
    {
        var rig = NewRig();
        var (exit, stdout, stderr) = await rig.InstallAsync("--api-key-file", rig.KeyFile, "--listen", "0.0.0.0:9555", "--binary", rig.Binary("1.0.0"));
        Assert.True(exit == 0, stdout + stderr);

        // A system user with no login, in the docker group.
        var user = Account(rig, "passwd", "vast-host-agent");
        Assert.InRange(int.Parse(user[2], System.Globalization.CultureInfo.InvariantCulture), 100, 999);
        Assert.Equal("/usr/sbin/nologin", user[6]);
        Assert.Contains("vast-host-agent", Account(rig, "group", "docker")[3].Split(','));
        var gid = Account(rig, "group", "vast-host-agent")[2];

        Assert.Equal("755", Mode(rig.P("/usr/local/bin/vast-host-agent")));
        Assert.Contains("vast-host-agent 1.0.0", File.ReadAllText(rig.P("/usr/local/bin/vast-host-agent")), StringComparison.Ordinal);

        // The key: only the key, root-only, in a root-only directory; never printed.
        Assert.Equal(Key, File.ReadAllText(rig.P("/etc/vast-host-agent/credentials/vast-api-key")));
        Assert.Equal("600", Mode(rig.P("/etc/vast-host-agent/credentials/vast-api-key")));
        Assert.Equal("700", Mode(rig.P("/etc/vast-host-agent/credentials")));
        Assert.DoesNotContain(Key, stdout + stderr, StringComparison.Ordinal);

        // The configuration: Vast on, management in dry-run, the listen address asked for; readable by the service group only.
        var config = File.ReadAllText(rig.P("/etc/vast-host-agent/agent.json"));
        Assert.Contains("\"listenAddress\": \"0.0.0.0:9555\"", config, StringComparison.Ordinal);
        Assert.Contains("\"dryRun\": true", config, StringComparison.Ordinal);
        Assert.Contains("\"enabled\": true", config, StringComparison.Ordinal);
        Assert.Equal("640", Mode(rig.P("/etc/vast-host-agent/agent.json")));
        var stat = await Tools.RunAsync("stat", "-c", "%u:%g", rig.P("/etc/vast-host-agent/agent.json"));
        Assert.Equal("0:" + gid, stat.Stdout.Trim());

        // The unit runs the installed binary; the credential is wired in.
        var unit = File.ReadAllText(rig.P("/etc/systemd/system/vast-host-agent.service"));
        Assert.Contains("\nExecStart=/usr/local/bin/vast-host-agent run --config /etc/vast-host-agent/agent.json\n", unit, StringComparison.Ordinal);
        Assert.Contains("\nLoadCredential=vast-api-key:/etc/vast-host-agent/credentials/vast-api-key\n", unit, StringComparison.Ordinal);
        Assert.Equal("644", Mode(rig.P("/etc/systemd/system/vast-host-agent.service")));

        // Dashboards, rules, the Alertmanager configuration and the documented example configuration for the host.
        Assert.True(File.Exists(rig.P("/usr/local/share/vast-host-agent/agent.example.json")));
        Assert.NotEmpty(Directory.GetFiles(rig.P("/usr/local/share/vast-host-agent/grafana"), "*.json", SearchOption.AllDirectories));
        Assert.NotEmpty(Directory.GetFiles(rig.P("/usr/local/share/vast-host-agent/prometheus"), "*.yml"));
        Assert.True(File.Exists(rig.P("/usr/local/share/vast-host-agent/alertmanager/alertmanager.yml")));
        Assert.Equal("755", Mode(rig.P("/usr/local/share/vast-host-agent/alertmanager/inline-secrets.sh")));

        var calls = rig.SystemctlCalls;
        Assert.Equal(["daemon-reload", "enable vast-host-agent.service", "restart vast-host-agent.service"], calls.Where(c => !c.StartsWith("is-active", StringComparison.Ordinal)));

        // How to check it.
        Assert.Contains("systemctl status vast-host-agent", stdout, StringComparison.Ordinal);
        Assert.Contains("http://127.0.0.1:9555/metrics", stdout, StringComparison.Ordinal);
        Assert.Contains("vast-host-agent doctor", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("NVIDIA", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_run_changes_nothing_and_an_upgrade_replaces_the_binary_but_keeps_a_modified_config()
    {
        var rig = NewRig();
        var first = await rig.InstallAsync("--api-key-file", rig.KeyFile, "--binary", rig.Binary("1.0.0"));
        Assert.True(first.ExitCode == 0, first.Stdout + first.Stderr);
        var passwd = File.ReadAllText(rig.P("/etc/passwd"));
        var group = File.ReadAllText(rig.P("/etc/group"));
        var tree = Tree(rig);

        var again = await rig.InstallAsync("--api-key-file", rig.KeyFile, "--binary", rig.Binary("1.0.0"));
        Assert.True(again.ExitCode == 0, again.Stdout + again.Stderr);
        Assert.Equal(passwd, File.ReadAllText(rig.P("/etc/passwd")));
        Assert.Equal(group, File.ReadAllText(rig.P("/etc/group")));
        Assert.Equal(tree, Tree(rig));
        Assert.Contains("upgrading vast-host-agent", again.Stdout, StringComparison.Ordinal);

        // The host edits the configuration; an upgrade (new binary, no key given, another --listen) keeps it.
        var configPath = rig.P("/etc/vast-host-agent/agent.json");
        var edited = File.ReadAllText(configPath).Replace("\"dryRun\": true", "\"dryRun\": false", StringComparison.Ordinal);
        File.WriteAllText(configPath, edited);
        var upgrade = await rig.InstallAsync("--binary", rig.Binary("1.1.0"), "--listen", "0.0.0.0:9999");
        Assert.True(upgrade.ExitCode == 0, upgrade.Stdout + upgrade.Stderr);
        Assert.Equal(edited, File.ReadAllText(configPath));
        Assert.Contains("is kept as it is: --listen 0.0.0.0:9999 is not applied", upgrade.Stderr, StringComparison.Ordinal);
        Assert.Contains("vast-host-agent 1.1.0", File.ReadAllText(rig.P("/usr/local/bin/vast-host-agent")), StringComparison.Ordinal);
        Assert.Equal(Key, File.ReadAllText(rig.P("/etc/vast-host-agent/credentials/vast-api-key")));
        Assert.Equal(3, rig.SystemctlCalls.Count(c => c == "restart vast-host-agent.service"));
    }

    [Fact]
    public async Task Uninstall_keeps_configuration_key_state_and_user_and_purge_removes_them()
    {
        var rig = NewRig();
        Assert.Equal(0, (await rig.InstallAsync("--api-key-file", rig.KeyFile, "--binary", rig.Binary("1.0.0"))).ExitCode);
        Directory.CreateDirectory(rig.P("/var/lib/vast-host-agent"));
        File.WriteAllText(rig.P("/var/lib/vast-host-agent/journal.jsonl"), "{}\n");

        var uninstall = await rig.InstallAsync("--uninstall");
        Assert.True(uninstall.ExitCode == 0, uninstall.Stdout + uninstall.Stderr);
        Assert.Contains("disable --now vast-host-agent.service", rig.SystemctlCalls);
        Assert.False(File.Exists(rig.P("/usr/local/bin/vast-host-agent")));
        Assert.False(File.Exists(rig.P("/etc/systemd/system/vast-host-agent.service")));
        Assert.False(Directory.Exists(rig.P("/usr/local/share/vast-host-agent")));
        Assert.True(File.Exists(rig.P("/etc/vast-host-agent/agent.json")));
        Assert.True(File.Exists(rig.P("/etc/vast-host-agent/credentials/vast-api-key")));
        Assert.True(File.Exists(rig.P("/var/lib/vast-host-agent/journal.jsonl")));
        Assert.Contains("vast-host-agent:", File.ReadAllText(rig.P("/etc/passwd")), StringComparison.Ordinal);

        var purge = await rig.InstallAsync("--uninstall", "--purge");
        Assert.True(purge.ExitCode == 0, purge.Stdout + purge.Stderr);
        Assert.False(Directory.Exists(rig.P("/etc/vast-host-agent")));
        Assert.False(Directory.Exists(rig.P("/var/lib/vast-host-agent")));
        Assert.DoesNotContain("vast-host-agent:", File.ReadAllText(rig.P("/etc/passwd")), StringComparison.Ordinal);
        Assert.DoesNotContain("vast-host-agent", File.ReadAllText(rig.P("/etc/group")), StringComparison.Ordinal);
        Assert.StartsWith("root:", File.ReadAllText(rig.P("/etc/passwd")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dry_run_prints_every_step_and_changes_nothing()
    {
        var rig = NewRig();
        var before = Tree(rig);
        var passwd = File.ReadAllText(rig.P("/etc/passwd"));
        var (exit, stdout, stderr) = await rig.InstallAsync("--dry-run", "--api-key-file", rig.KeyFile, "--binary", rig.Binary("1.0.0"));
        Assert.True(exit == 0, stdout + stderr);
        Assert.Equal(before, Tree(rig));
        Assert.Equal(passwd, File.ReadAllText(rig.P("/etc/passwd")));
        Assert.DoesNotContain(rig.SystemctlCalls, c => !c.StartsWith("is-active", StringComparison.Ordinal));
        Assert.Contains("would run: useradd", stdout, StringComparison.Ordinal);
        Assert.Contains("would write: " + rig.P("/etc/vast-host-agent/credentials/vast-api-key") + " (mode 0600)", stdout, StringComparison.Ordinal);
        Assert.Contains("would run: systemctl restart vast-host-agent.service", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Clear_errors_before_any_change_not_root_not_systemd_port_in_use_bad_key_and_a_warning_without_an_NVIDIA_driver()
    {
        // Not root: as nobody.
        var rig = NewRig();
        var before = Tree(rig);
        var notRoot = await Tools.RunAsync("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            Path.Combine(TestEnvironment.RepositoryRoot, "install.sh"), "--root", rig.Root, "--binary", rig.Binary("1.0.0"));
        Assert.Equal(1, notRoot.ExitCode);
        Assert.Contains("must run as root", notRoot.Stderr, StringComparison.Ordinal);

        // Not systemd.
        var noSystemd = NewRig(systemd: false);
        var r = await noSystemd.InstallAsync("--binary", noSystemd.Binary("1.0.0"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("systemd is not running", r.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(noSystemd.P("/usr/local/bin/vast-host-agent")));

        // Port in use by another program.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        r = await rig.InstallAsync("--listen", $"127.0.0.1:{port}", "--binary", rig.Binary("1.0.0"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"port {port} is in use", r.Stderr, StringComparison.Ordinal);
        listener.Stop();

        // A key file holding something else than one key; a malformed address.
        var badKey = Path.Combine(rig.Bin, "bad.key");
        File.WriteAllText(badKey, "export VAST_API_KEY=abc\n");
        r = await rig.InstallAsync("--api-key-file", badKey, "--binary", rig.Binary("1.0.0"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("does not hold one API key", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("abc", r.Stderr, StringComparison.Ordinal);
        r = await rig.InstallAsync("--listen", "9470", "--binary", rig.Binary("1.0.0"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("expected host:port", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, Tree(rig));
        Assert.DoesNotContain(rig.SystemctlCalls, c => !c.StartsWith("is-active", StringComparison.Ordinal));

        // No NVIDIA driver: a warning, and the install goes on.
        var noDriver = NewRig(nvidia: false);
        r = await noDriver.InstallAsync("--binary", noDriver.Binary("1.0.0"));
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.Contains("warning: no NVIDIA driver found", r.Stderr, StringComparison.Ordinal);
        Assert.True(File.Exists(noDriver.P("/usr/local/bin/vast-host-agent")));
        // Without a key: local telemetry only.
        Assert.Contains("\"enabled\": false", File.ReadAllText(noDriver.P("/etc/vast-host-agent/agent.json")), StringComparison.Ordinal);
        // The credential exists (empty), so systemd's LoadCredential= does not fail the start.
        Assert.Equal("", File.ReadAllText(noDriver.P("/etc/vast-host-agent/credentials/vast-api-key")));
        Assert.Equal("600", Mode(noDriver.P("/etc/vast-host-agent/credentials/vast-api-key")));
        Assert.Contains("--api-key-file", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Role_rig_asks_for_no_key_installs_a_unit_without_credential_and_a_rig_configuration()
    {
        var rig = NewRig();
        var (exit, stdout, stderr) = await rig.InstallAsync("--role", "rig", "--binary", rig.Binary("1.0.0"));
        Assert.True(exit == 0, stdout + stderr);

        // No credential anywhere: not in the unit, no key file, not even the credentials directory.
        var unit = File.ReadAllText(rig.P("/etc/systemd/system/vast-host-agent.service"));
        Assert.DoesNotContain("Credential", unit, StringComparison.Ordinal);
        Assert.Contains("\nExecStart=/usr/local/bin/vast-host-agent run --config /etc/vast-host-agent/agent.json\n", unit, StringComparison.Ordinal);
        Assert.False(Directory.Exists(rig.P("/etc/vast-host-agent/credentials")));

        // The configuration: role rig, no vast section (so no Vast call and nothing to enable).
        var config = File.ReadAllText(rig.P("/etc/vast-host-agent/agent.json"));
        Assert.Contains("\"role\": \"rig\"", config, StringComparison.Ordinal);
        Assert.DoesNotContain("\"vast\"", config, StringComparison.Ordinal);
        Assert.DoesNotContain("apiKey", config, StringComparison.Ordinal);
        Assert.Equal("640", Mode(rig.P("/etc/vast-host-agent/agent.json")));

        // A rig still reads containers (docker group) and is enabled and started like any install; it never
        // mentions a key.
        Assert.Contains("vast-host-agent", Account(rig, "group", "docker")[3].Split(','));
        Assert.Equal(["daemon-reload", "enable vast-host-agent.service", "restart vast-host-agent.service"], rig.SystemctlCalls.Where(c => !c.StartsWith("is-active", StringComparison.Ordinal)));
        Assert.DoesNotContain("api-key", stdout + stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("role:     rig", stdout, StringComparison.Ordinal);

        // An upgrade without --role keeps the configuration's role (and its credential-free unit); a key is refused.
        var upgrade = await rig.InstallAsync("--binary", rig.Binary("1.1.0"));
        Assert.True(upgrade.ExitCode == 0, upgrade.Stdout + upgrade.Stderr);
        Assert.DoesNotContain("Credential", File.ReadAllText(rig.P("/etc/systemd/system/vast-host-agent.service")), StringComparison.Ordinal);
        Assert.Equal(config, File.ReadAllText(rig.P("/etc/vast-host-agent/agent.json")));
        var withKey = await rig.InstallAsync("--role", "rig", "--api-key-file", rig.KeyFile, "--binary", rig.Binary("1.1.0"));
        Assert.Equal(1, withKey.ExitCode);
        Assert.Contains("--role rig holds no Vast API key", withKey.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(rig.P("/etc/vast-host-agent/credentials")));
    }

    [Fact]
    public async Task Role_controller_requires_the_key_and_writes_a_fleet_skeleton_in_dry_run_without_gpu_or_docker()
    {
        var rig = NewRig(nvidia: false);
        var before = Tree(rig);
        var noKey = await rig.InstallAsync("--role", "controller", "--binary", rig.Binary("1.0.0"));
        Assert.Equal(1, noKey.ExitCode);
        Assert.Contains("--role controller needs the Vast API key", noKey.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, Tree(rig));

        var (exit, stdout, stderr) = await rig.InstallAsync("--role", "controller", "--api-key-file", rig.KeyFile, "--binary", rig.Binary("1.0.0"));
        Assert.True(exit == 0, stdout + stderr);
        Assert.Equal(Key, File.ReadAllText(rig.P("/etc/vast-host-agent/credentials/vast-api-key")));
        Assert.Equal("600", Mode(rig.P("/etc/vast-host-agent/credentials/vast-api-key")));
        Assert.Contains("\nLoadCredential=vast-api-key:/etc/vast-host-agent/credentials/vast-api-key\n",
            File.ReadAllText(rig.P("/etc/systemd/system/vast-host-agent.service")), StringComparison.Ordinal);
        Assert.DoesNotContain(Key, stdout + stderr, StringComparison.Ordinal);

        var config = File.ReadAllText(rig.P("/etc/vast-host-agent/agent.json"));
        Assert.Contains("\"role\": \"controller\"", config, StringComparison.Ordinal);
        Assert.Matches("\"gpu\": \\{\\s+\"enabled\": false", config);
        Assert.Matches("\"docker\": \\{\\s+\"enabled\": false", config);
        Assert.Matches("\"vast\": \\{\\s+\"enabled\": true", config);
        Assert.Contains("\"dryRun\": true", config, StringComparison.Ordinal);
        Assert.Contains("\"fleet\": {", config, StringComparison.Ordinal);
        Assert.Contains("\"url\": \"http://127.0.0.1:9090\"", config, StringComparison.Ordinal);
        Assert.Contains("\"machines\": []", config, StringComparison.Ordinal);

        // No GPUs or containers on a controller: no docker group, no warning about a missing NVIDIA driver.
        Assert.DoesNotContain("vast-host-agent", Account(rig, "group", "docker")[3].Split(','));
        Assert.DoesNotContain("NVIDIA", stderr, StringComparison.Ordinal);

        // A re-run without the key keeps the stored one.
        var again = await rig.InstallAsync("--role", "controller", "--binary", rig.Binary("1.0.0"));
        Assert.True(again.ExitCode == 0, again.Stdout + again.Stderr);
        Assert.Equal(Key, File.ReadAllText(rig.P("/etc/vast-host-agent/credentials/vast-api-key")));
    }

    [Fact]
    public async Task An_unknown_role_exits_2_with_one_line_and_a_role_against_the_configuration_stops_before_any_change()
    {
        var rig = NewRig();
        var before = Tree(rig);
        var (exit, stdout, stderr) = await rig.InstallAsync("--role", "worker", "--binary", rig.Binary("1.0.0"));
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        Assert.Equal("install.sh: error: --role 'worker': expected standalone, rig or controller\n", stderr);
        Assert.Equal(before, Tree(rig));

        // Installed as standalone; asking for a rig now contradicts agent.json, which is never rewritten.
        Assert.Equal(0, (await rig.InstallAsync("--api-key-file", rig.KeyFile, "--binary", rig.Binary("1.0.0"))).ExitCode);
        var tree = Tree(rig);
        var mismatch = await rig.InstallAsync("--role", "rig", "--binary", rig.Binary("1.0.0"));
        Assert.Equal(1, mismatch.ExitCode);
        Assert.Contains("says role standalone", mismatch.Stderr, StringComparison.Ordinal);
        Assert.Equal(tree, Tree(rig));
    }

    [Fact]
    public async Task A_web_config_is_installed_for_the_service_and_named_in_a_new_configuration_and_passwords_or_relative_paths_are_refused()
    {
        var rig = NewRig();
        var hash = BCrypt.Net.BCrypt.HashPassword("s3cret", 4);
        var web = Path.Combine(rig.Bin, "web.yml");

        // A password in clear, or a certificate path that would break once the file is copied: refused before any change.
        File.WriteAllText(web, "tls_server_config:\n  cert_file: /etc/ssl/rig.crt\n  key_file: /etc/ssl/rig.key\nbasic_auth_users:\n  prometheus: hunter2\n");
        var plain = await rig.InstallAsync("--web-config", web, "--binary", rig.Binary("1.0.0"));
        Assert.Equal(1, plain.ExitCode);
        Assert.Contains("basic_auth_users.prometheus is not a bcrypt hash", plain.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", plain.Stdout + plain.Stderr, StringComparison.Ordinal);
        File.WriteAllText(web, $"tls_server_config:\n  cert_file: rig.crt\n  key_file: /etc/ssl/rig.key\nbasic_auth_users:\n  prometheus: '{hash}'\n");
        var relative = await rig.InstallAsync("--web-config", web, "--binary", rig.Binary("1.0.0"));
        Assert.Equal(1, relative.ExitCode);
        Assert.Contains("cert_file: rig.crt is a relative path", relative.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(rig.P("/usr/local/bin/vast-host-agent")));

        File.WriteAllText(web, $"tls_server_config:\n  cert_file: \"/etc/ssl/rig.crt\"\n  key_file: /etc/ssl/rig.key\nbasic_auth_users:\n  prometheus: '{hash}'\n");
        var (exit, stdout, stderr) = await rig.InstallAsync("--web-config", web, "--listen", "0.0.0.0:9470", "--binary", rig.Binary("1.0.0"));
        Assert.True(exit == 0, stdout + stderr);
        Assert.Equal(File.ReadAllText(web), File.ReadAllText(rig.P("/etc/vast-host-agent/web-config.yml")));
        Assert.Equal("640", Mode(rig.P("/etc/vast-host-agent/web-config.yml")));
        var stat = await Tools.RunAsync("stat", "-c", "%u:%g", rig.P("/etc/vast-host-agent/web-config.yml"));
        Assert.Equal("0:" + Account(rig, "group", "vast-host-agent")[2], stat.Stdout.Trim());
        var config = File.ReadAllText(rig.P("/etc/vast-host-agent/agent.json"));
        using (var json = System.Text.Json.JsonDocument.Parse(config, new() { CommentHandling = System.Text.Json.JsonCommentHandling.Skip }))
        {
            Assert.Equal("/etc/vast-host-agent/web-config.yml", json.RootElement.GetProperty("metrics").GetProperty("webConfigFile").GetString());
            Assert.Equal("0.0.0.0:9470", json.RootElement.GetProperty("metrics").GetProperty("listenAddress").GetString());
        }

        Assert.Contains("curl -s --cacert CA.pem -u USER https://127.0.0.1:9470/metrics", stdout, StringComparison.Ordinal);

        // A configuration the host already has is never rewritten: the installer says what to add.
        File.WriteAllText(rig.P("/etc/vast-host-agent/agent.json"), "{ \"metrics\": { \"listenAddress\": \"0.0.0.0:9470\" } }\n");
        var again = await rig.InstallAsync("--web-config", web, "--binary", rig.Binary("1.0.1"));
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("add \"webConfigFile\": \"/etc/vast-host-agent/web-config.yml\" to its \"metrics\" section", again.Stderr, StringComparison.Ordinal);
        Assert.Equal("{ \"metrics\": { \"listenAddress\": \"0.0.0.0:9470\" } }\n", File.ReadAllText(rig.P("/etc/vast-host-agent/agent.json")));
    }
}
