using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using VastHostAgent.Gpu;
using VastHostAgent.Interop;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Gpu;

/// <summary>
/// The single-constant design of the NVML reads: every read is keyed by one export, the NOT_SUPPORTED cache and
/// <c>vasthost_nvml_errors_total{function}</c> both use that key, and the key is the function the read really calls.
/// The tables are found by reflection (every static <c>NvmlRead&lt;T&gt;[]</c> of the agent), so a new table is checked too.
/// </summary>
[Collection(InProcessNvmlGroup.Name)]
public sealed unsafe partial class NvmlReadTableTests
{
    /// <summary>Every read of every table in the agent, named by declaring type, field and row.</summary>
    private static List<(string Table, object Read, string Export)> AllReads()
    {
        var reads = new List<(string, object, string)>();
        foreach (var type in typeof(NvmlReads).Assembly.GetTypes())
        {
            foreach (var field in type.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                var element = field.FieldType.IsArray ? field.FieldType.GetElementType()! : null;
                if (element is not { IsGenericType: true } || element.GetGenericTypeDefinition() != typeof(NvmlRead<>))
                {
                    continue;
                }

                var table = (Array)field.GetValue(null)!;
                for (var i = 0; i < table.Length; i++)
                {
                    var read = table.GetValue(i)!;
                    reads.Add(($"{type.Name}.{field.Name}[{i}]", read, (string)element.GetProperty(nameof(NvmlRead<int>.Export))!.GetValue(read)!));
                }
            }
        }

        return reads;
    }

    /// <summary>The NVML functions declared (and nothing else) in agent/Interop/Interop.Nvml.cs.</summary>
    private static HashSet<string> DeclaredExports()
    {
        var source = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "agent", "Interop", "Interop.Nvml.cs"));
        return [.. Declaration().Matches(source).Select(m => m.Groups["name"].Value)];
    }

    [Fact]
    public void Every_read_has_its_own_export_declared_in_the_interop_and_exported_by_the_fake_library()
    {
        var reads = AllReads();
        var tables = reads.Select(r => r.Table[..r.Table.IndexOf('[', StringComparison.Ordinal)]).Distinct().ToList();
        Assert.True(tables.Count >= 5 && reads.Count >= 35, $"the scan found {reads.Count} reads in: {string.Join(", ", tables)}");

        var shared = reads.GroupBy(r => r.Export, StringComparer.Ordinal).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key} keys {g.Count()} reads ({string.Join(", ", g.Select(r => r.Table))})").ToList();
        Assert.True(shared.Count == 0, "two reads share an export (one NOT_SUPPORTED cache entry and one error series for different readings):\n" + string.Join('\n', shared));

        var declared = DeclaredExports();
        Assert.True(declared.Count >= 50, $"the scan of Interop.Nvml.cs found {declared.Count} declarations");
        var undeclared = reads.Where(r => !declared.Contains(r.Export)).Select(r => $"{r.Table}: {r.Export}").ToList();
        Assert.True(undeclared.Count == 0, "reads keyed by a name that is not an NVML declaration in Interop.Nvml.cs:\n" + string.Join('\n', undeclared));

        var library = NativeLibrary.Load(TestEnvironment.FakeNvml);
        try
        {
            var missing = reads.Where(r => !NativeLibrary.TryGetExport(library, r.Export, out _)).Select(r => $"{r.Table}: {r.Export}").ToList();
            Assert.True(missing.Count == 0, "reads keyed by a name the fake libnvidia-ml.so.1 does not export:\n" + string.Join('\n', missing));
        }
        finally
        {
            NativeLibrary.Free(library);
        }
    }

    /// <summary>
    /// Each read runs alone against the fake library while one NVML function at a time fails (UNKNOWN, which only
    /// counts), under the library's exports as probed and with each versioned export absent in turn (all absent
    /// too), so every variant runs. A read must count failures only under its own key, and exactly when the failing
    /// function is the one its key names: a body that calls another function than its key, or calls nothing, fails here.
    /// </summary>
    [Fact]
    public void Each_read_calls_exactly_the_export_it_is_keyed_by()
    {
        var reads = AllReads();
        var declared = DeclaredExports().Where(e => e.StartsWith("nvmlDevice", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        var dir = TestEnvironment.NewTempDirectory("readtable");
        var state = new FakeNvmlState(dir, Everything);
        SetNativeEnvironment("FAKE_NVML_STATE", state.Path);
        SetNativeEnvironment("FAKE_NVML_STATS", ""); // no bookkeeping file per call

        Assert.True(NvmlLibrary.TryLoad(TestEnvironment.FakeNvml, out var loadError), loadError);
        Assert.Equal(Nvml.Return.Success, Nvml.nvmlInit_v2());
        try
        {
            var handle = HandleOfGpu0();
            var configurations = ExportConfigurations();
            var problems = new List<string>();

            // Without a failure, no read counts anything.
            foreach (var (table, read, export) in reads)
            {
                foreach (var (name, exports) in configurations)
                {
                    var counted = RunAlone(read, exports, handle);
                    if (counted.Count > 0)
                    {
                        problems.Add($"{table} {export} ({name}): counted {Describe(counted)} with nothing failing");
                    }
                }
            }

            foreach (var failing in declared)
            {
                state.Set($"gpu.0.error.{failing}", "999");
                foreach (var (table, read, export) in reads)
                {
                    var counted = configurations.SelectMany(c => RunAlone(read, c.Exports, handle)).ToList();
                    var wrongKey = counted.Where(e => e.Function != export || e.Code != "UNKNOWN").ToList();
                    if (wrongKey.Count > 0)
                    {
                        problems.Add($"{table} {export}: with {failing} failing, counted {Describe(wrongKey)}");
                    }
                    else if (counted.Count == 0 && FakeFails(failing, export))
                    {
                        problems.Add($"{table} {export}: with its own export failing, counted nothing (it does not call {export})");
                    }
                    else if (counted.Count > 0 && !FakeFails(failing, export))
                    {
                        problems.Add($"{table} {export}: counted a failure of {failing} under {export} (it calls {failing})");
                    }
                }

                state.Remove($"gpu.0.error.{failing}");
            }

            Assert.True(problems.Count == 0, string.Join('\n', problems));
        }
        finally
        {
            _ = Nvml.nvmlShutdown();
        }
    }

    private static nint HandleOfGpu0()
    {
        nint handle;
        Assert.Equal(Nvml.Return.Success, Nvml.nvmlDeviceGetHandleByIndex_v2(0, &handle));
        return handle;
    }

    /// <summary>A state in which the fake supports every reading, with processes and ECC on.</summary>
    private static readonly Dictionary<string, string> Everything = new()
    {
        ["gpus"] = "1",
        ["gpu.0.mem_temp"] = "80",
        ["gpu.0.temp_mem_max"] = "95",
        ["gpu.0.ecc_mode"] = "1",
        ["gpu.0.remap_corr"] = "1",
        ["gpu.0.processes"] = "4242:1048576",
    };

    /// <summary>The fake fails <paramref name="export"/> when told to fail <paramref name="failing"/> (its name-matching rules).</summary>
    private static bool FakeFails(string failing, string export) =>
        failing == export
        || Versioned().Replace(export, "") == failing
        || (failing == nameof(Nvml.nvmlDeviceGetCurrentClocksThrottleReasons) && export == nameof(Nvml.nvmlDeviceGetCurrentClocksEventReasons));

    /// <summary>All versioned exports present (as the fake has them), each absent in turn, and all absent.</summary>
    private static List<(string Name, NvmlExports Exports)> ExportConfigurations()
    {
        var all = new NvmlExports(true, true, true, true, true, true, true, true, true, true, true, true, true);
        var configurations = new List<(string, NvmlExports)> { ("all exports", all), ("no versioned exports", default) };
        foreach (var flag in typeof(NvmlExports).GetProperties().Where(p => p.PropertyType == typeof(bool)))
        {
            object boxed = all;
            typeof(NvmlExports).GetField($"<{flag.Name}>k__BackingField", BindingFlags.Instance | BindingFlags.NonPublic)!.SetValue(boxed, false);
            configurations.Add(($"without {flag.Name}", (NvmlExports)boxed));
        }

        return configurations;
    }

    /// <summary>Runs one read on a fresh device (nothing cached, nothing down) and returns what it counted.</summary>
    private static List<NvmlErrorCount> RunAlone(object read, NvmlExports exports, nint handle)
    {
        var policy = new NvmlCallPolicy(NullLogger.Instance);
        var device = new NvmlDevice(handle, 0, "GPU-test")
        {
            Identity = new GpuIdentity(0, "GPU-test", "test", "", null, null, null),
            Statics = new DeviceStatics { FanCount = 2 },
        };
        switch (read)
        {
            case NvmlRead<DeviceIdentityParts> identity:
                var parts = new DeviceIdentityParts(0);
                NvmlReads.Run([identity], policy, exports, device, ref parts);
                break;
            case NvmlRead<DeviceStatics> statics:
                var values = new DeviceStatics();
                NvmlReads.Run([statics], policy, exports, device, ref values);
                break;
            case NvmlRead<GpuReadingBuilder> cycle:
                var reading = new GpuReadingBuilder(2) { Ecc = true }; // the ECC counters are read only with ECC on
                NvmlReads.Run([cycle], policy, exports, device, ref reading);
                break;
            default:
                Assert.Fail($"a read of an unknown kind: {read.GetType()} (teach this test how to run it)");
                break;
        }

        return policy.ErrorSnapshot();
    }

    private static string Describe(IEnumerable<NvmlErrorCount> errors) =>
        string.Join(", ", errors.Select(e => $"{e.Function}/{e.Code}"));

    [GeneratedRegex(@"static partial \S+ (?<name>nvml\w+)\(")]
    private static partial Regex Declaration();

    [GeneratedRegex(@"_v\d+$")]
    private static partial Regex Versioned();

    // .NET keeps its own copy of the environment on Unix; the C library reads the native one.
    private static void SetNativeEnvironment(string name, string value) => Assert.Equal(0, setenv(name, value, 1));

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
