namespace VastHostAgent.Kernel;

/// <summary>
/// What one GPU-hour of this rig costs in electricity when the GPU works flat out, as the economics feature works
/// it out (standalone: published in the snapshot; controller: read from the rig agent's series in Prometheus).
/// Management sets the <c>powerCost</c> min bid and the break-even price guard from it. Dollars, host side.
/// </summary>
/// <param name="LoadCostPerGpuHour">Electricity of one GPU-hour under load ($): the GPU's power limit × PUE plus its share of the overhead, at the highest tariff of the schedule.</param>
/// <param name="Explanation">How it was worked out, for <c>plan</c> ("350 W limit × PUE 1.10 + 150 W / 8 overhead = 404 W at 0.2700 $/kWh").</param>
/// <param name="At">When it was worked out.</param>
public sealed record RigPowerCost(double LoadCostPerGpuHour, string Explanation, DateTimeOffset At);
