using System.Runtime.Versioning;

// The agent runs on Linux GPU hosts only (NVML, /proc, /sys, cgroups, systemd).
[assembly: SupportedOSPlatform("linux")]
