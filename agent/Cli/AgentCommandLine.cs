using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VastHostAgent.Hosting;
using VastHostAgent.Metrics;

namespace VastHostAgent.Cli;

/// <summary>The <c>vast-host-agent</c> command line: <c>run</c> (default), <c>metrics</c>, <c>doctor</c>.</summary>
public static class AgentCommandLine
{
    private const string Examples = """

        Examples:
          vast-host-agent                                  run the daemon with /etc/vast-host-agent/agent.json
          vast-host-agent run --config ./agent.json --listen 127.0.0.1:9470
          vast-host-agent metrics                          sample once and print the Prometheus exposition
          vast-host-agent status                           GPUs, instances and containers at a glance
          vast-host-agent status --json                    the same for scripts
          vast-host-agent machine                          this machine as Vast lists it (needs vast.enabled and an API key)
          vast-host-agent plan                             what the listing reconcile would change, and why
          vast-host-agent apply --once --no-dry-run        apply one reconcile now
          vast-host-agent maint schedule --at 2026-12-01T02:00Z --duration 2h --category gpu
          vast-host-agent maint list                       windows, their state and why; the fault guard (controller: every machine)
          vast-host-agent maint cancel cli-20261201T0200Z  cancel (and cancel_maint on Vast if scheduled there)
          vast-host-agent rentals --since 7d               the rental ledger: every Vast instance run of the last week
          vast-host-agent doctor                           check configuration, NVML, Docker and sensors
          VASTHOST_METRICS__LISTENADDRESS=0.0.0.0:9470 vast-host-agent run
          systemctl reload vast-host-agent                 re-read the configuration (SIGHUP); an invalid one changes nothing

        Exit codes: 0 ok, 1 failure, 2 invalid configuration or arguments.
        Documentation: README.md, docs/metrics.md, packaging/config/agent.example.json
        """;

    public static async Task<int> InvokeAsync(string[] args)
    {
        var configOption = new Option<string?>("--config", "-c")
        {
            Description = $"Configuration file (default: ${AgentConfiguration.ConfigPathVariable}, else {AgentConfiguration.DefaultPath} if present)",
            HelpName = "PATH",
            Recursive = true,
        };

        var listenOption = new Option<string?>("--listen")
        {
            Description = "Override metrics.listenAddress, e.g. 127.0.0.1:9470",
            HelpName = "ADDR:PORT",
        };

        var root = new RootCommand("""
            vast-host-agent: GPU telemetry, Docker/Vast instance mapping and Vast listing management for
            Vast.ai hosts. Serves Prometheus metrics; runs as a systemd service (one agent per rig).
            """);
        root.Options.Add(configOption);

        var run = new Command("run", "Run the daemon (the default when no command is given)");
        run.Options.Add(listenOption);
        run.SetAction((parse, ct) => RunAsync(parse.GetValue(configOption), parse.GetValue(listenOption), ct));
        root.Subcommands.Add(run);
        root.Options.Add(listenOption);
        root.SetAction((parse, ct) => RunAsync(parse.GetValue(configOption), parse.GetValue(listenOption), ct));

        var metrics = new Command("metrics", "Sample once and print the Prometheus exposition to stdout");
        metrics.SetAction((parse, ct) => MetricsOnceAsync(parse.GetValue(configOption), ct));
        root.Subcommands.Add(metrics);

        var jsonOption = new Option<bool>("--json") { Description = "Print JSON for scripts instead of tables" };
        var status = new Command("status", "GPUs and containers at a glance: from the running daemon, or by sampling once");
        status.Options.Add(jsonOption);
        status.SetAction((parse, ct) => StatusCommand.RunAsync(parse.GetValue(configOption), parse.GetValue(jsonOption), Console.Out, ct));
        root.Subcommands.Add(status);

        var machine = new Command("machine", "This machine as the Vast API sees it: listing, prices, occupancy, rentals, maintenance");
        machine.Options.Add(jsonOption);
        machine.SetAction((parse, ct) => MachineCommand.RunAsync(parse.GetValue(configOption), parse.GetValue(jsonOption), Console.Out, ct));
        root.Subcommands.Add(machine);

        var machineOption = new Option<string?>("--machine") { Description = "Controller: only this machine (id or host name)", HelpName = "ID|HOSTNAME" };
        var plan = new Command("plan", "One reconcile against the Vast API without changing anything: what would change, and why");
        plan.Options.Add(machineOption);
        plan.SetAction((parse, ct) => PlanCommand.RunAsync(parse.GetValue(configOption), apply: false, noDryRun: false, Console.Out, ct, parse.GetValue(machineOption)));
        root.Subcommands.Add(plan);

        var onceOption = new Option<bool>("--once") { Description = "Run one reconcile and exit (required: the daemon itself reconciles continuously)" };
        var noDryRunOption = new Option<bool>("--no-dry-run") { Description = "Apply even though management.dryRun is true (this run only)" };
        var applyCommand = new Command("apply", "One reconcile that changes the listing (dry-run unless management.dryRun=false or --no-dry-run)");
        applyCommand.Options.Add(onceOption);
        applyCommand.Options.Add(noDryRunOption);
        applyCommand.Options.Add(machineOption);
        applyCommand.SetAction(async (parse, ct) =>
        {
            if (!parse.GetValue(onceOption))
            {
                await Console.Error.WriteLineAsync("error: apply needs --once (the running daemon reconciles continuously; `apply --once` runs one reconcile now)").ConfigureAwait(false);
                return ExitCodes.InvalidConfiguration;
            }

            return await PlanCommand.RunAsync(parse.GetValue(configOption), apply: true, noDryRun: parse.GetValue(noDryRunOption), Console.Out, ct, parse.GetValue(machineOption)).ConfigureAwait(false);
        });
        root.Subcommands.Add(applyCommand);

        var maint = new Command("maint", "Maintenance windows: schedule, list, cancel (the running agent carries them out)");
        var atOption = new Option<string>("--at") { Description = "Start, ISO 8601 (e.g. 2026-12-01T02:00:00Z; UTC when no offset is given)", Required = true, HelpName = "TIME" };
        var durationOption = new Option<string>("--duration") { Description = "Length: 90m, 2h, 1d or hh:mm:ss (5m to 14d)", Required = true, HelpName = "SPAN" };
        var categoryOption = new Option<string>("--category") { Description = "power, internet, disk, gpu, software or other", DefaultValueFactory = _ => "other", HelpName = "CATEGORY" };
        var idOption = new Option<string?>("--id") { Description = "A name for the window (default cli-<start>)", HelpName = "ID" };
        var schedule = new Command("schedule", "Add a one-off window: offers are clamped now, renters notified on Vast a notice period before");
        schedule.Options.Add(atOption);
        schedule.Options.Add(durationOption);
        schedule.Options.Add(categoryOption);
        schedule.Options.Add(idOption);
        schedule.Options.Add(machineOption);
        schedule.SetAction((parse, _) => MaintCommand.ScheduleAsync(parse.GetValue(configOption), parse.GetValue(atOption)!, parse.GetValue(durationOption)!,
            parse.GetValue(categoryOption)!, parse.GetValue(idOption), Console.Out, parse.GetValue(machineOption)));
        maint.Subcommands.Add(schedule);
        var list = new Command("list", "Windows with their state, why, deferrals and history; the fault guard");
        list.Options.Add(jsonOption);
        list.Options.Add(machineOption);
        list.SetAction((parse, _) => MaintCommand.ListAsync(parse.GetValue(configOption), parse.GetValue(jsonOption), Console.Out, parse.GetValue(machineOption)));
        maint.Subcommands.Add(list);
        var idArgument = new Argument<string>("id") { Description = "The window's id (see maint list)" };
        var cancel = new Command("cancel", "Cancel a window at any state: the listing is restored, and cancel_maint sent if it was scheduled on Vast");
        cancel.Arguments.Add(idArgument);
        cancel.Options.Add(machineOption);
        cancel.SetAction((parse, _) => MaintCommand.CancelAsync(parse.GetValue(configOption), parse.GetValue(idArgument)!, Console.Out, parse.GetValue(machineOption)));
        maint.Subcommands.Add(cancel);
        root.Subcommands.Add(maint);

        var sinceOption = new Option<string?>("--since") { Description = "Runs running at or after this: a date or time (UTC without an offset) or an age (90m, 24h, 7d)", HelpName = "DATE" };
        var rentals = new Command("rentals", "The rental ledger: one row per Vast instance run (reads the state directory; the daemon need not run)");
        rentals.Options.Add(sinceOption);
        rentals.Options.Add(jsonOption);
        rentals.SetAction((parse, _) => RentalsCommand.RunAsync(parse.GetValue(configOption), parse.GetValue(sinceOption), parse.GetValue(jsonOption), Console.Out));
        root.Subcommands.Add(rentals);

        var doctor = new Command("doctor", "Check configuration, NVML, Docker, sensors and the metrics port; exit 1 when a check fails");
        doctor.SetAction((parse, ct) => DoctorCommand.RunAsync(parse.GetValue(configOption), Console.Out, ct));
        root.Subcommands.Add(doctor);

        foreach (var option in root.Options)
        {
            if (option is HelpOption help && help.Action is HelpAction inner)
            {
                help.Action = new HelpWithExamples(inner);
            }
        }

        var parseResult = root.Parse(args);

        // --help wins over the errors it comes with (`maint schedule --help` lacks the required --at and
        // --duration): the help action says it clears them, so it runs and shows the command's options.
        if (parseResult.Errors.Count > 0 && parseResult.Action is not { ClearsParseErrors: true })
        {
            foreach (var error in parseResult.Errors)
            {
                await Console.Error.WriteLineAsync($"error: {error.Message}").ConfigureAwait(false);
            }

            await Console.Error.WriteLineAsync("Run 'vast-host-agent --help' for usage.").ConfigureAwait(false);
            return ExitCodes.InvalidConfiguration;
        }

        // The daemon's host handles SIGTERM itself and may need more than System.CommandLine's default 2 s
        // (a Vast mutation in flight gets ManagementService.ShutdownGrace): no forced exit 143 after 2 s.
        return await parseResult.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
    }

    /// <summary>Loads and validates configuration; prints each problem on its own line to stderr.</summary>
    internal static (IConfigurationRoot? Configuration, AgentConfiguration.Source Source) LoadConfiguration(
        string? configPath, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var loaded = TryLoadConfiguration(configPath, overrides);
        PrintConfigurationProblems(loaded.Problems, loaded.Source);
        return (loaded.Configuration, loaded.Source);
    }

    /// <summary>Loads and validates configuration without printing (the daemon's SIGHUP reload logs the problems instead).</summary>
    internal static LoadedConfiguration TryLoadConfiguration(string? configPath, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var source = AgentConfiguration.ResolvePath(configPath);
        try
        {
            var configuration = AgentConfiguration.Build(source, overrides);
            var problems = AgentRuntime.Validate(configuration);
            return new LoadedConfiguration(problems.Count == 0 ? configuration : null, source, problems);
        }
        catch (ConfigurationException ex)
        {
            return new LoadedConfiguration(null, source, ex.Problems);
        }
    }

    /// <summary>
    /// The one-shot service graph of a command that talks to the Vast API (<c>machine</c>, <c>plan</c>, <c>apply</c>):
    /// null, with the reason on stderr, when the configuration is invalid or the Vast API is off.
    /// </summary>
    internal static async Task<ServiceProvider?> VastServicesAsync(string? configPath)
    {
        var (configuration, _) = LoadConfiguration(configPath);
        if (configuration is null)
        {
            return null;
        }

        var services = AgentRuntime.BuildOneShot(configuration);
        if (services.GetRequiredService<Microsoft.Extensions.Options.IOptions<VastHostAgent.Vast.VastOptions>>().Value.Enabled)
        {
            return services;
        }

        await services.DisposeAsync().ConfigureAwait(false);
        await Console.Error.WriteLineAsync("error: the Vast API is off: set vast.enabled to true and provide an API key (see packaging/config/agent.example.json)").ConfigureAwait(false);
        return null;
    }

    private static void PrintConfigurationProblems(IReadOnlyList<string> problems, AgentConfiguration.Source source)
    {
        var from = source.Path is null ? "" : $" ({source.Path})";
        foreach (var problem in problems)
        {
            Console.Error.WriteLine($"error: invalid configuration{from}: {problem}");
        }
    }

    private static async Task<int> RunAsync(string? configPath, string? listen, CancellationToken cancellationToken)
    {
        var overrides = listen is null ? null : new Dictionary<string, string?> { ["metrics:listenAddress"] = listen };
        var (configuration, source) = LoadConfiguration(configPath, overrides);
        if (configuration is null)
        {
            return ExitCodes.InvalidConfiguration;
        }

        // SIGHUP reads the same file (and the same environment and --listen) again.
        return await AgentRuntime.RunDaemonAsync(configuration, source, () => TryLoadConfiguration(configPath, overrides), cancellationToken).ConfigureAwait(false);
    }

    private static async Task<int> MetricsOnceAsync(string? configPath, CancellationToken cancellationToken)
    {
        // One sample: no XID watcher thread (it would only see events during the few milliseconds we run).
        var (configuration, _) = LoadConfiguration(configPath, new Dictionary<string, string?> { ["gpu:xidEvents"] = "false" });
        if (configuration is null)
        {
            return ExitCodes.InvalidConfiguration;
        }

        await using var services = AgentRuntime.BuildOneShot(configuration);
        await AgentRuntime.SampleOnceAsync(services, cancellationToken).ConfigureAwait(false);
        var body = await services.GetRequiredService<SnapshotExporter>().RenderAsync(cancellationToken).ConfigureAwait(false);
        await using var stdout = Console.OpenStandardOutput();
        await stdout.WriteAsync(body, cancellationToken).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    private sealed class HelpWithExamples(HelpAction inner) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            var result = inner.Invoke(parseResult);
            if (parseResult.CommandResult.Command is RootCommand)
            {
                parseResult.InvocationConfiguration.Output.WriteLine(Examples);
            }

            return result;
        }
    }
}
