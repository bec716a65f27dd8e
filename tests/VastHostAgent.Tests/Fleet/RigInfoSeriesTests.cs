using System.Text;
using Microsoft.Extensions.Options;
using VastHostAgent.Containers;
using VastHostAgent.Kernel;
using VastHostAgent.Metrics;
using VastHostAgent.Tests.Support;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Fleet;

/// <summary><c>vasthost_rig_info</c> names the rig once, from <c>agent.hostname</c> and <c>agent.machineId</c>.</summary>
public sealed class RigInfoSeriesTests
{
    private static async Task<Exposition> RenderAsync(AgentOptions agent)
    {
        using var exporter = new SnapshotExporter(
            new MetricsRegistry(), null, Options.Create(new MetricsOptions()), Options.Create(new DockerOptions { Enabled = false }),
            Options.Create(new VastOptions()), Options.Create(agent), TimeProvider.System);
        exporter.Apply(new SnapshotStore().Current with { Generation = 1 });
        return Exposition.Parse(Encoding.UTF8.GetString((await exporter.RenderAsync(default)).Span));
    }

    [Fact]
    public async Task The_configured_host_name_and_machine_id_are_the_labels()
    {
        var m = await RenderAsync(new AgentOptions { Hostname = " rig-a ", MachineId = 4242 });

        var info = Assert.Single(m.Named("vasthost_rig_info"));
        Assert.Equal(1, info.Value);
        Assert.Equal("rig-a", info.Label("hostname"));
        Assert.Equal("4242", info.Label("machine_id"));
        Assert.Equal("gauge", m.Types["vasthost_rig_info"]);
    }

    [Fact]
    public async Task Without_configuration_the_system_host_name_and_an_empty_machine_id_are_exported()
    {
        var m = await RenderAsync(new AgentOptions());

        var info = Assert.Single(m.Named("vasthost_rig_info"));
        Assert.Equal(Environment.MachineName, info.Label("hostname"));
        Assert.Contains("machine_id=\"\"", m.Text, StringComparison.Ordinal);
        Assert.Equal("", info.Label("machine_id"));
    }
}
