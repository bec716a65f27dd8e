using VastHostAgent.Kernel;

namespace VastHostAgent.Containers;

/// <summary>This feature's part of the <see cref="HostSnapshot"/>, by name.</summary>
public static class ContainerSnapshot
{
    extension(HostSnapshot snapshot)
    {
        /// <summary>Docker and its containers (event-driven); null while Docker is disabled or not yet reached.</summary>
        public DockerState? Docker => snapshot.Part<DockerState>();

        /// <summary>The snapshot with <c>Docker</c> replaced.</summary>
        public HostSnapshot WithDocker(DockerState? value) => snapshot.WithPart(value);

        /// <summary>Resource use per running container id, from cgroups.</summary>
        public IReadOnlyDictionary<string, ContainerUsage>? ContainerUsage => snapshot.Part<IReadOnlyDictionary<string, ContainerUsage>>();

        /// <summary>The snapshot with <c>ContainerUsage</c> replaced.</summary>
        public HostSnapshot WithContainerUsage(IReadOnlyDictionary<string, ContainerUsage>? value) => snapshot.WithPart(value);

        /// <summary>GPU memory and processes per container and GPU (NVML processes mapped through /proc).</summary>
        public IReadOnlyList<ContainerGpuProcesses>? ContainerGpuProcesses => snapshot.Part<IReadOnlyList<ContainerGpuProcesses>>();

        /// <summary>The snapshot with <c>ContainerGpuProcesses</c> replaced.</summary>
        public HostSnapshot WithContainerGpuProcesses(IReadOnlyList<ContainerGpuProcesses>? value) => snapshot.WithPart(value);
    }
}
