using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static ResNet.Trainer.Tests.Onnx.OnnxTestModels;

namespace ResNet.Trainer.Tests.Onnx;

/// <summary>ONNX Runtime on the exported file equals TorchSharp eval on the same weights.</summary>
public class OnnxParityTests(ITestOutputHelper output)
{
    private const float Tolerance = 1e-4f;

    // Batch 1 runs at the family's own input size; the larger batches of ImageNet models run at 64x64 to keep
    // CPU time low (the graph is the same; only the spatial extent changes).
    [Theory]
    [InlineData("resnet20", null)]
    [InlineData("resnet56", null)]
    [InlineData("resnet18", ShortcutOption.B)]
    [InlineData("resnet50", ShortcutOption.B)]
    [InlineData("resnet50", ShortcutOption.C)]
    public void OnnxRuntime_MatchesTorchSharpEval_OnLogits_ForBatches1_7_32(string arch, ShortcutOption? shortcut)
    {
        var spec = Spec(arch, shortcut);
        int bigSize = spec.Stem == StemKind.ImageNet ? 64 : 32;
        using var model = Trained(spec, seed: 20151210, imageSize: bigSize);
        foreach (var (batch, size) in new[] { (1, spec.DefaultImageSize), (7, bigSize), (32, bigSize) })
        {
            float diff = CompareLogits(model, batch, size, new OnnxExportOptions { ImageHeight = size });
            output.WriteLine($"{spec.Name} batch {batch} at {size}x{size}: max |logits diff| = {diff:E2}");
            Assert.True(diff <= Tolerance, $"{spec.Name} batch {batch}: max abs diff {diff} > {Tolerance}");
        }
    }

    [Theory]
    [InlineData("plain20")]
    [InlineData("plain18")]
    [InlineData("resnet50-paper")]
    [InlineData("resnet8-w24-s2")]
    public void OnnxRuntime_MatchesTorchSharpEval_ForPlainNetsAndPaperStridePlacement(string arch)
    {
        var spec = Spec(arch);
        int size = spec.Stem == StemKind.ImageNet ? 64 : 32;
        using var model = Trained(spec, seed: 7, imageSize: size);
        float diff = CompareLogits(model, 7, size, new OnnxExportOptions { ImageHeight = size });
        output.WriteLine($"{spec.Name} batch 7 at {size}x{size}: max |logits diff| = {diff:E2}");
        Assert.True(diff <= Tolerance, $"{spec.Name}: max abs diff {diff}");
    }

    [Fact]
    public void FoldedBatchNormAndFoldedNormalization_GiveTheSameLogits()
    {
        var spec = Spec("resnet18");
        using var model = Trained(spec, seed: 3, imageSize: 64);
        var norm = InputNormalization.ImageNet;
        foreach (bool fold in new[] { false, true })
        {
            float diff = CompareLogits(model, 7, 64, new OnnxExportOptions { ImageHeight = 64, Normalization = norm, FoldBatchNorm = fold }, norm);
            output.WriteLine($"resnet18 ImageNet normalization, fold BN {fold}: max |logits diff| = {diff:E2}");
            Assert.True(diff <= Tolerance, $"fold {fold}: max abs diff {diff}");
        }
    }

    // CNTK-style padding where the stride does not divide a window's input: at 70 pixels the stem gives 35, the max-pool 17,
    // and layer2's 3x3/2 convolution then pads 1 on each side so that it gives 9, as its 1x1/2 projection does. (With k - s
    // padding at every size, the two paths gave 8 and 9, and neither TorchSharp nor ONNX Runtime could add them.)
    [Theory]
    [InlineData(70)]
    [InlineData(100)]
    [InlineData(65)]
    public void CntkPadding_AtSizesTheStridesDoNotDivide_RunsAndMatchesOnnxRuntime(int size)
    {
        var spec = Spec("resnet18", ShortcutOption.B) with { Padding = PaddingStyle.CntkAsymmetric };
        using var model = Trained(spec, seed: 70, imageSize: size);
        float diff = CompareLogits(model, 3, size, new OnnxExportOptions { ImageHeight = size });
        output.WriteLine($"resnet18 (CNTK padding) at {size}x{size}: max |logits diff| = {diff:E2}");
        Assert.True(diff <= Tolerance, $"max abs diff {diff}");
    }

    [Fact]
    public void BgrMeanImageNormalization_OnZeroTo255Input_GivesTheSameLogits()
    {
        var spec = Spec("resnet20") with { Padding = PaddingStyle.CntkAsymmetric };
        using var model = Trained(spec, seed: 5, imageSize: 32);
        var meanImage = Floats(rand([3, 32, 32], generator: new Generator().manual_seed(9)) * 255);
        var norm = new InputNormalization(PixelRange.ZeroTo255, [0f, 0f, 0f], [64f, 60f, 58f], ChannelOrder.Bgr, meanImage);
        float diff = CompareLogits(model, 7, 32, new OnnxExportOptions { Normalization = norm }, norm, inputScale: 255);
        output.WriteLine($"resnet20 (CNTK padding), BGR + mean image on 0..255 input: max |logits diff| = {diff:E2}");
        Assert.True(diff <= Tolerance, $"max abs diff {diff}");
    }

    [Fact]
    public void FlipTestTimeAugmentation_InTheGraph_AveragesTheViewsAsTheEvaluatorDoes_WithTheMirrorsActivationsFlippedBack()
    {
        var spec = Spec("resnet20");
        using var model = Trained(spec, seed: 8, imageSize: 32);
        var meanImage = Floats(rand([3, 32, 32], generator: new Generator().manual_seed(4))); // not mirror-symmetric
        var norm = new InputNormalization(PixelRange.ZeroToOne, [0f, 0f, 0f], [0.3f, 0.3f, 0.3f], ChannelOrder.Rgb, meanImage);
        using var x = Images(5, 3, 32, seed: 12);
        float[] logits, activations;
        using (no_grad())
        {
            using var plain = norm.Apply(x);
            using var mirrored = norm.Apply(x.flip(3));
            using var a = model.forward(plain);
            using var b = model.forward(mirrored);
            logits = Floats((a + b) / 2);
            using var actA = LastStage(model, plain);
            using var actB = LastStage(model, mirrored);
            activations = Floats((actA + actB.flip(3)) / 2);
        }
        using var scorer = new OnnxScorer(OnnxExporter.Export(model, new OnnxExportOptions { Normalization = norm, FlipTestTimeAugmentation = true, IncludeActivations = true }),
            new OnnxScorerOptions { IntraOpThreads = 2 });
        var result = scorer.Score(Floats(x), 5, activations: true);
        float logitsDiff = MaxAbsDiff(logits, result.Logits), activationsDiff = MaxAbsDiff(activations, result.Activations!);
        output.WriteLine($"flip TTA in the graph: max |logits diff| = {logitsDiff:E2}, max |activations diff| = {activationsDiff:E2}");
        Assert.True(logitsDiff <= Tolerance, $"logits: max abs diff {logitsDiff}");
        Assert.True(activationsDiff <= Tolerance, $"activations: max abs diff {activationsDiff}");
        Assert.Equal(5 * 10, result.Logits.Length);
        Assert.Contains(OnnxExporter.Build(model, new OnnxExportOptions { Normalization = norm, FlipTestTimeAugmentation = true }).MetadataProps,
            p => p.Key == OnnxMetadataKeys.TestTimeAugmentation && p.Value == "flip");
        using var withoutFlip = new OnnxScorer(OnnxExporter.Export(model, new OnnxExportOptions { Normalization = norm }), new OnnxScorerOptions { IntraOpThreads = 2 });
        float plainDiff = MaxAbsDiff(logits, withoutFlip.Score(Floats(x), 5).Logits);
        Assert.True(plainDiff > 1e-3f, "the graph without the option gives the same logits: the test proves nothing");
    }

    // The last stage's output before pooling (CIFAR stem: conv, BN, ReLU; no max-pool).
    private static Tensor LastStage(Trainer.Models.ResNetModel model, Tensor input)
    {
        using var scope = NewDisposeScope();
        var y = model.Stem.Norm.forward(model.Stem.Conv.forward(input)).relu();
        foreach (var stage in model.Stages) y = stage.forward(y);
        return y.MoveToOuterDisposeScope();
    }

    private static float CompareLogits(Trainer.Models.ResNetModel model, int batch, int size, OnnxExportOptions options,
        InputNormalization? norm = null, double inputScale = 1.0)
    {
        var spec = model.Spec;
        using var x = Images(batch, spec.InputChannels, size, seed: batch * 31 + size, scale: inputScale);
        float[] expected;
        using (no_grad())
        {
            using var normalized = norm is null ? x.alias() : norm.Apply(x);
            using var logits = model.forward(normalized);
            expected = Floats(logits);
        }
        // A comparison of near-zero logits would prove nothing.
        Assert.True(expected.Max(MathF.Abs) > 0.05f, $"logits of {spec.Name} are all near zero");
        using var scorer = new OnnxScorer(OnnxExporter.Export(model, options), new OnnxScorerOptions { IntraOpThreads = 2 });
        var result = scorer.Score(Floats(x), batch);
        return MaxAbsDiff(expected, result.Logits);
    }
}
