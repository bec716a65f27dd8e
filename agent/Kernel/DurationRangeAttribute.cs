using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace VastHostAgent.Kernel;

/// <summary>
/// A <see cref="TimeSpan"/> range check that is safe under NativeAOT (the framework's
/// <c>Range(typeof(TimeSpan), ...)</c> needs reflection over type converters).
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class DurationRangeAttribute : ValidationAttribute
{
    public DurationRangeAttribute(string minimum, string maximum)
    {
        Minimum = TimeSpan.Parse(minimum, CultureInfo.InvariantCulture);
        Maximum = TimeSpan.Parse(maximum, CultureInfo.InvariantCulture);
        ErrorMessage = $"must be between {minimum} and {maximum}";
    }

    public TimeSpan Minimum { get; }

    public TimeSpan Maximum { get; }

    public override bool IsValid(object? value) => value is not TimeSpan t || (t >= Minimum && t <= Maximum);
}
