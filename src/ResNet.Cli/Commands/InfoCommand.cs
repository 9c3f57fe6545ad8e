using System.CommandLine;
using System.Globalization;
using ResNet.Cli.Hosting;
using ResNet.Trainer.Models;

namespace ResNet.Cli.Commands;

/// <summary><c>resnet info &lt;arch&gt;</c>: parameter count, MACs per image and the layer table.</summary>
internal static class InfoCommand
{
    public static Command Create(TextWriter output)
    {
        var arch = new Argument<string>("arch") { Description = "Architecture name, e.g. resnet20, ResNet-56, plain-34, resnet50, resnet50-paper, resnet8-w28." };
        var size = new Option<int?>("--image-size") { Description = "Input height and width in pixels (default: 32 for CIFAR models, 224 for ImageNet models)." };
        var classes = new Option<int?>("--classes") { Description = "Number of classes of the classifier (default: 10 for CIFAR models, 1000 for ImageNet models)." };
        var channels = new Option<int>("--channels") { Description = "Input channels: 1 (grayscale) or 3 (RGB).", DefaultValueFactory = _ => 3 };
        var cmd = new Command("info", "Show an architecture: parameters, multiply-accumulates per image, and its layers.") { arch, size, classes, channels };
        cmd.SetAction(parse => UserErrors.Run(parse, () =>
        {
            var spec = ResNetSpec.Parse(parse.GetValue(arch)!) with
            {
                InputChannels = parse.GetValue(channels),
            };
            spec = spec with { NumClasses = parse.GetValue(classes) ?? spec.NumClasses };
            Write(output, spec, parse.GetValue(size) ?? spec.DefaultImageSize);
            return 0;
        }));
        return cmd;
    }

    internal static void Write(TextWriter o, ResNetSpec spec, int imageSize)
    {
        var rows = ModelStats.LayerTable(spec, imageSize);
        var inv = CultureInfo.InvariantCulture;
        o.WriteLine($"{spec.Name}: {(spec.Residual ? "residual" : "plain")}, {spec.Block.ToString().ToLowerInvariant()} blocks [{string.Join(", ", spec.StageDepths)}], " +
                    $"{spec.Depth} weighted layers, {spec.Stem} stem, shortcut option {spec.Shortcut}");
        if (spec.Block == BlockKind.Bottleneck)
            o.WriteLine(spec.StridePlacement == BottleneckStride.V15
                ? "bottleneck stride: on the 3x3 convolution (torchvision's v1.5; torchvision weights load into this)"
                : "bottleneck stride: on the first 1x1 convolution (the paper's placement)");
        o.WriteLine($"input: {spec.InputChannels}x{imageSize}x{imageSize}, classes: {spec.NumClasses}");
        o.WriteLine(string.Create(inv, $"parameters: {rows.Sum(r => r.Parameters):N0}"));
        o.WriteLine(string.Create(inv, $"MACs per image: {FormatMacs(rows.Sum(r => r.Macs))} ({rows.Sum(r => r.Macs):N0})"));
        o.WriteLine();
        int w = Math.Max(8, rows.Max(r => r.Name.Length));
        int d = rows.Max(r => r.Description.Length);
        o.WriteLine($"{"layer".PadRight(w)}  {"description".PadRight(d)}  {"output",-12} {"params",12} {"MACs",10}");
        foreach (var r in rows)
            o.WriteLine(string.Create(inv, $"{r.Name.PadRight(w)}  {r.Description.PadRight(d)}  {r.OutputShape,-12} {r.Parameters,12:N0} {FormatMacs(r.Macs),10}"));
    }

    internal static string FormatMacs(long macs) => macs switch
    {
        >= 1_000_000_000 => (macs / 1e9).ToString("0.000", CultureInfo.InvariantCulture) + "G",
        >= 1_000_000 => (macs / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + "M",
        >= 1_000 => (macs / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "K",
        _ => macs.ToString(CultureInfo.InvariantCulture),
    };
}
