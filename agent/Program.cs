using VastHostAgent.Cli;

return await AgentCommandLine.InvokeAsync(args).ConfigureAwait(false);
