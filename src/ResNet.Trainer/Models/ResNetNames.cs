using System.Globalization;
using System.Text.RegularExpressions;

namespace ResNet.Trainer.Models;

/// <summary>Thrown when an architecture name is not a member of the ResNet family.</summary>
public sealed class UnknownArchitectureException(string message) : ArgumentException(message);

/// <summary>
/// The architecture names users type. Case, hyphens and underscores are ignored:
/// <list type="bullet">
/// <item><c>resnet18</c>, <c>resnet34</c>, <c>resnet50</c>, <c>resnet101</c>, <c>resnet152</c>: ImageNet models, option B.
/// Bottleneck models use torchvision's v1.5 stride placement; append <c>-paper</c> for the paper's.</item>
/// <item><c>resnetD</c> for D = 6n+2 (20, 32, 44, 56, 110, 1202, ...): CIFAR models, option A.</item>
/// <item><c>plainD</c>: the plain counterpart of any of the above (plain-18/34 and plain-(6n+2)).</item>
/// <item><c>resnetD-wW</c> (and <c>plainD-wW</c>): a CIFAR model of width W, that is stem and stages of W, 2W and 4W channels
/// instead of the paper's 16, 32 and 64 (<c>resnet8-w28</c>: wider and shallower at about ResNet-20's multiply-adds).</item>
/// <item><c>resnetD-s2</c> (after any width: <c>resnet20-w32-s2</c>): a CIFAR model whose stem has a stride of 2
/// (<see cref="StemKind.CifarStrided"/>), so its stages run at half the resolution.</item>
/// </list>
/// </summary>
public static partial class ResNetNames
{
    /// <summary>The ImageNet depths of the paper's Table 1.</summary>
    public static IReadOnlyList<int> ImageNetDepths { get; } = [18, 34, 50, 101, 152];

    /// <summary>The CIFAR depths the paper names (Table 6).</summary>
    public static IReadOnlyList<int> NamedCifarDepths { get; } = [20, 32, 44, 56, 110, 1202];

    /// <summary>Every name the paper uses, for listings and tests.</summary>
    public static IReadOnlyList<string> Named { get; } =
        ImageNetDepths.Select(d => "resnet" + d)
            .Concat(NamedCifarDepths.Select(d => "resnet" + d))
            .Concat(["plain18", "plain34"])
            .Concat(NamedCifarDepths.Take(5).Select(d => "plain" + d))
            .ToArray();

    private const string ValidForms =
        "Valid forms: resnet18, resnet34, resnet50, resnet101, resnet152 (ImageNet; add '-paper' to a bottleneck model for the paper's stride placement), " +
        "resnet<6n+2> such as resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202 (CIFAR), " +
        "plain-<depth> for the plain counterparts (plain-18, plain-34, plain-20, plain-56, ...), " +
        "'-w<width>' after a CIFAR name for another first-stage width than 16 (resnet8-w28: stages of 28, 56 and 112 channels), " +
        "and '-s2' last for a CIFAR stem of stride 2 (resnet20-w32-s2: stages at half the resolution). Case and hyphens are ignored.";

    [GeneratedRegex(@"^(resnet|plain)(\d+)(paper|v1|v15)?(?:w(\d+))?(s2)?$")]
    private static partial Regex NamePattern();

    /// <summary>Parses an architecture name; see the type's remarks for the grammar.</summary>
    /// <exception cref="UnknownArchitectureException">The name is not a member of the family; the message lists the valid forms.</exception>
    public static ResNetSpec Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string key = name.Trim().ToLowerInvariant().Replace("-", "").Replace("_", "").Replace(".", "");
        var m = NamePattern().Match(key);
        if (!m.Success || !int.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int depth))
            throw new UnknownArchitectureException($"Unknown architecture '{name}'. {ValidForms}");

        bool residual = m.Groups[1].Value == "resnet";
        string suffix = m.Groups[3].Value;
        ResNetSpec spec = depth switch
        {
            18 => ResNetSpec.ResNet18(),
            34 => ResNetSpec.ResNet34(),
            50 => ResNetSpec.ResNet50(),
            101 => ResNetSpec.ResNet101(),
            152 => ResNetSpec.ResNet152(),
            _ when depth >= 8 && (depth - 2) % 6 == 0 => ResNetSpec.Cifar((depth - 2) / 6),
            _ => throw new UnknownArchitectureException(
                $"Unknown architecture '{name}': depth {depth} is neither an ImageNet depth (18, 34, 50, 101, 152) nor 6n+2 with n >= 1. {ValidForms}"),
        };

        if (suffix.Length > 0)
        {
            if (spec.Block != BlockKind.Bottleneck)
                throw new UnknownArchitectureException(
                    $"Unknown architecture '{name}': the stride-placement suffix applies only to bottleneck models (resnet50/101/152). {ValidForms}");
            spec = spec with
            {
                Name = spec.Name + (suffix == "paper" || suffix == "v1" ? "-paper" : ""),
                StridePlacement = suffix == "paper" || suffix == "v1" ? BottleneckStride.Paper : BottleneckStride.V15,
            };
        }

        if (m.Groups[4].Success)
            spec = WithWidth(spec, name, m.Groups[4].Value);
        if (m.Groups[5].Success)
        {
            if (spec.Stem != StemKind.Cifar)
                throw new UnknownArchitectureException(
                    $"Unknown architecture '{name}': the stem-stride suffix '-s2' applies only to CIFAR models (resnet20-s2, resnet20-w32-s2, ...); ImageNet models have their own strided stem. {ValidForms}");
            spec = spec with { Name = spec.Name + "-s2", Stem = StemKind.CifarStrided };
        }

        if (!residual)
        {
            if (spec.Stem == StemKind.ImageNet && spec.Block == BlockKind.Bottleneck)
                throw new UnknownArchitectureException(
                    $"Unknown architecture '{name}': the paper's plain ImageNet nets are plain-18 and plain-34. {ValidForms}");
            spec = spec with { Name = spec.Name.Replace("resnet", "plain", StringComparison.Ordinal), Residual = false, Shortcut = ShortcutOption.A };
        }
        return spec;
    }

    /// <summary>The largest first-stage width the grammar accepts (its last stage then has 4x as many channels).</summary>
    public const int MaxCifarWidth = 1024;

    private static ResNetSpec WithWidth(ResNetSpec spec, string name, string digits)
    {
        if (spec.Stem != StemKind.Cifar)
            throw new UnknownArchitectureException(
                $"Unknown architecture '{name}': the width suffix '-w<width>' applies only to CIFAR models (resnet20, resnet8-w28, ...); ImageNet models keep the paper's widths. {ValidForms}");
        if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int width) || width < 1 || width > MaxCifarWidth)
            throw new UnknownArchitectureException(
                $"Unknown architecture '{name}': the width must be a whole number from 1 to {MaxCifarWidth} (the paper's is 16). {ValidForms}");
        if (width == 16)
            return spec;
        return spec with { Name = $"{spec.Name}-w{width}", StemWidth = width, StageWidths = [width, 2 * width, 4 * width] };
    }
}
