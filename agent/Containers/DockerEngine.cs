using Docker.DotNet;
using Docker.DotNet.Models;

namespace VastHostAgent.Containers;

/// <summary>
/// The Docker engine as the inventory uses it: its version, the container list, one container's details and the
/// event stream. The seam under the Docker client, so the inventory's logic is tested without a daemon; the
/// tests that need a real engine run a private dockerd.
/// </summary>
public interface IDockerEngine : IDisposable
{
    Task<string?> VersionAsync(CancellationToken cancellationToken);

    /// <summary>Every container, running or not.</summary>
    Task<IList<ContainerListResponse>> ListContainersAsync(CancellationToken cancellationToken);

    /// <summary>One container's details; null when it no longer exists.</summary>
    Task<ContainerInspectResponse?> InspectAsync(string id, CancellationToken cancellationToken);

    /// <summary>Reports events (in order) until the stream ends or <paramref name="cancellationToken"/> is cancelled.</summary>
    Task MonitorEventsAsync(ContainerEventsParameters parameters, IProgress<Message> progress, CancellationToken cancellationToken);
}

/// <summary>Connects to a Docker engine.</summary>
public interface IDockerEngineFactory
{
    IDockerEngine Connect(Uri endpoint);
}

/// <summary>The Docker engine through Docker.DotNet over its socket.</summary>
internal sealed class DockerDotNetEngineFactory : IDockerEngineFactory
{
    public IDockerEngine Connect(Uri endpoint) => new Engine(new DockerClientBuilder().WithEndpoint(endpoint).Build());

    private sealed class Engine(DockerClient client) : IDockerEngine
    {
        public async Task<string?> VersionAsync(CancellationToken cancellationToken) =>
            (await client.System.GetVersionAsync(cancellationToken).ConfigureAwait(false)).Version;

        public Task<IList<ContainerListResponse>> ListContainersAsync(CancellationToken cancellationToken) =>
            client.Containers.ListContainersAsync(new ContainersListParameters { All = true }, cancellationToken);

        public async Task<ContainerInspectResponse?> InspectAsync(string id, CancellationToken cancellationToken)
        {
            try
            {
                return await client.Containers.InspectContainerAsync(id, cancellationToken).ConfigureAwait(false);
            }
            catch (DockerContainerNotFoundException)
            {
                return null;
            }
        }

        public Task MonitorEventsAsync(ContainerEventsParameters parameters, IProgress<Message> progress, CancellationToken cancellationToken) =>
            client.System.MonitorEventsAsync(parameters, progress, cancellationToken);

        public void Dispose() => client.Dispose();
    }
}
