using ResNet.Trainer.Data;

namespace ResNet.Trainer.Pretrained;

/// <summary>
/// The catalog of pretrained ImageNet ResNets reachable by name: torchvision's published weights for ResNet-18/34/50/101/152
/// (downloaded on first use, see <see cref="WeightsCache"/>) and the CNTK ResNet18 trunk that NuGet ships.
/// </summary>
/// <remarks>
/// Every torchvision fact here (address, file name with its SHA-256 prefix, resize size, top-1/top-5, parameter count) was
/// read from the <c>ResNet*_Weights</c> enums of torchvision/models/resnet.py, torchvision 0.14.1 (tag v0.14.1 of
/// github.com/pytorch/vision; Debian's python3-torchvision 0.14.1-2 installs the same file) and checked against a later
/// upstream copy; the preset (crop 224, bilinear, ImageNet mean/std) is <c>ImageClassification</c> in
/// torchvision/transforms/_presets.py of the same release.
/// </remarks>
public static class ResNetPretrained
{
    private const string TorchvisionLicense =
        "torchvision's code is BSD-3-Clause. For its pretrained weights torchvision states no licence of its own: its README " +
        "('Pre-trained Model License') warns that they may carry terms derived from their training data (ImageNet, whose terms " +
        "allow non-commercial research and education) and leaves it to the user to check permission for their use.";

    private const string TorchvisionSource = "pytorch/vision v0.14.1, torchvision/models/resnet.py (ResNet*_Weights) and torchvision/transforms/_presets.py";

    private static PretrainedWeights Torchvision(string arch, string tag, string file, int resize, double top1, double top5, long parameters) =>
        new(arch, tag, WeightsFormat.TorchvisionStateDict, new Uri("https://download.pytorch.org/models/" + file),
            ResizeCropTransform.ImageNet(resize), top1, top5, parameters, TorchvisionLicense, TorchvisionSource);

    /// <summary>ResNet-18, torchvision <c>IMAGENET1K_V1</c> (the paper's recipe): 69.758% top-1.</summary>
    public static PretrainedWeights ResNet18 { get; } = Torchvision("resnet18", "IMAGENET1K_V1", "resnet18-f37072fd.pth", 256, 69.758, 89.078, 11_689_512);

    /// <summary>ResNet-34, torchvision <c>IMAGENET1K_V1</c>: 73.314% top-1.</summary>
    public static PretrainedWeights ResNet34 { get; } = Torchvision("resnet34", "IMAGENET1K_V1", "resnet34-b627a593.pth", 256, 73.314, 91.420, 21_797_672);

    /// <summary>ResNet-50 (v1.5), torchvision <c>IMAGENET1K_V1</c> (the paper's recipe): 76.130% top-1.</summary>
    public static PretrainedWeights ResNet50V1 { get; } = Torchvision("resnet50", "IMAGENET1K_V1", "resnet50-0676ba61.pth", 256, 76.130, 92.862, 25_557_032);

    /// <summary>ResNet-50 (v1.5), torchvision <c>IMAGENET1K_V2</c> (torchvision's newer recipe; evaluated at resize 232): 80.858% top-1.</summary>
    public static PretrainedWeights ResNet50V2 { get; } = Torchvision("resnet50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 232, 80.858, 95.434, 25_557_032);

    /// <summary>ResNet-101 (v1.5), torchvision <c>IMAGENET1K_V1</c>: 77.374% top-1.</summary>
    public static PretrainedWeights ResNet101V1 { get; } = Torchvision("resnet101", "IMAGENET1K_V1", "resnet101-63fe2227.pth", 256, 77.374, 93.546, 44_549_160);

    /// <summary>ResNet-101 (v1.5), torchvision <c>IMAGENET1K_V2</c> (resize 232): 81.886% top-1.</summary>
    public static PretrainedWeights ResNet101V2 { get; } = Torchvision("resnet101", "IMAGENET1K_V2", "resnet101-cd907fc2.pth", 232, 81.886, 95.780, 44_549_160);

    /// <summary>ResNet-152 (v1.5), torchvision <c>IMAGENET1K_V1</c>: 78.312% top-1.</summary>
    public static PretrainedWeights ResNet152V1 { get; } = Torchvision("resnet152", "IMAGENET1K_V1", "resnet152-394f9c45.pth", 256, 78.312, 94.046, 60_192_808);

    /// <summary>ResNet-152 (v1.5), torchvision <c>IMAGENET1K_V2</c> (resize 232): 82.284% top-1.</summary>
    public static PretrainedWeights ResNet152V2 { get; } = Torchvision("resnet152", "IMAGENET1K_V2", "resnet152-f82ba261.pth", 232, 82.284, 96.002, 60_192_808);

    /// <summary>ResNet-50 with torchvision's default weights (<c>DEFAULT = IMAGENET1K_V2</c>).</summary>
    public static PretrainedWeights ResNet50 => ResNet50V2;

    /// <summary>ResNet-101 with torchvision's default weights (<c>IMAGENET1K_V2</c>).</summary>
    public static PretrainedWeights ResNet101 => ResNet101V2;

    /// <summary>ResNet-152 with torchvision's default weights (<c>IMAGENET1K_V2</c>).</summary>
    public static PretrainedWeights ResNet152 => ResNet152V2;

    /// <summary>
    /// The ImageNet-trained CNTK ResNet18 trunk of NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1 (MIT), the one
    /// real pretrained network reachable on machines without internet access: fixed 224x224 input, its own per-pixel mean
    /// image, 15,897,152 parameters without a head; no published accuracy. Loaded through <see cref="Onnx.PretrainedResNet18"/>.
    /// </summary>
    public static PretrainedWeights CntkResNet18 { get; } = new("cntk-resnet18", "IMAGENET", WeightsFormat.DnnImageFeaturizerOnnx, null, null,
        null, null, 15_897_152, // the trunk as imported (no head); CatalogTests counts it
        "MIT (NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1, licence expression in its .nuspec).",
        "NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1 (DnnImageModels/ResNet18Onnx/ResNet18.onnx)");

    /// <summary>Every entry, torchvision's first, in order of depth.</summary>
    public static IReadOnlyList<PretrainedWeights> All { get; } =
        [ResNet18, ResNet34, ResNet50V1, ResNet50V2, ResNet101V1, ResNet101V2, ResNet152V1, ResNet152V2, CntkResNet18];

    /// <summary>
    /// Finds an entry by name: <c>resnet50</c> (the architecture's default weights, as torchvision's <c>DEFAULT</c>) or
    /// <c>resnet50:IMAGENET1K_V1</c>; <c>cntk-resnet18</c> for the NuGet trunk. Case, hyphens and underscores in the
    /// architecture are ignored (<c>ResNet-50</c>).
    /// </summary>
    /// <exception cref="ArgumentException">No entry has that name; the message lists the names there are.</exception>
    public static PretrainedWeights Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        int colon = name.IndexOf(':');
        string arch = Key(colon < 0 ? name : name[..colon]);
        string? tag = colon < 0 ? null : name[(colon + 1)..].Trim();
        var matches = All.Where(e => Key(e.Architecture) == arch).ToList();
        PretrainedWeights? found = tag is null
            ? matches.LastOrDefault() // V2 where there is one: torchvision's DEFAULT
            : matches.FirstOrDefault(e => string.Equals(e.Tag, tag, StringComparison.OrdinalIgnoreCase));
        return found ?? throw new ArgumentException(
            $"No pretrained weights are named '{name}'. Known names: {string.Join(", ", All.Select(e => e.Architecture).Distinct())}, " +
            $"optionally with a tag ({string.Join(", ", All.Select(e => e.Name))}). For any other torchvision-format file, pass its path as the pretrained weights file.",
            nameof(name));
    }

    private static string Key(string s) => s.Trim().ToLowerInvariant().Replace("-", "").Replace("_", "");
}
