using System.Runtime.Versioning;

// Like the agent, the tests run on Linux only (real dockerd, /proc, cgroups, the fake NVML .so).
[assembly: SupportedOSPlatform("linux")]
