using ResNet.Trainer.Training;

namespace ResNet.Trainer.Tests.Training;

public class DegradationResultTests
{
    private static DegradationRun Run(string name, int depth, bool residual, params double[] errors) =>
        new(name, depth, residual, 269_434, errors.Select((e, i) => new EpochStats(i + 1, 50L * (i + 1), 2 * e, e, null, null, 0.1, 10.0 * (i + 1))).ToList(),
            TimeSpan.FromSeconds(10 * errors.Length));

    private static DegradationResult Sample() => new(
        [Run("plain20", 20, false, 0.6, 0.2), Run("resnet20", 20, true, 0.55, 0.18), Run("plain56", 56, false, 0.8, 0.3), Run("resnet56", 56, true, 0.7, 0.15)], 6400);

    [Fact]
    public void FromCsv_ReadsBackWhatToCsvWrote_RowForRow()
    {
        var original = Sample();
        var read = DegradationResult.FromCsv(original.ToCsv(), 6400);
        Assert.Equal(original.Runs.Select(r => (r.Name, r.Depth, r.Residual, r.Parameters)), read.Runs.Select(r => (r.Name, r.Depth, r.Residual, r.Parameters)));
        Assert.Equal(original.Runs.SelectMany(r => r.History), read.Runs.SelectMany(r => r.History));
        Assert.Equal(original.ToCsv(), read.ToCsv());
        // A run's wall time is the sum of its epochs' (10 s and 20 s).
        Assert.All(read.Runs, r => Assert.Equal(30.0, r.Elapsed.TotalSeconds));
        Assert.Equal((true, true), read.Verdict());
    }

    [Fact]
    public void FromCsv_TheWrongHeaderOrABadRow_IsRefusedNamingTheLine()
    {
        var header = Assert.Throws<FormatException>(() => DegradationResult.FromCsv("epoch,error\n1,0.5\n", 100));
        Assert.Contains("starts with 'epoch,error'", header.Message);
        string csv = Sample().ToCsv().Replace("resnet20,20,true,269434,2,100,", "resnet20,20,true,269434,2,x,");
        var row = Assert.Throws<FormatException>(() => DegradationResult.FromCsv(csv, 100));
        Assert.StartsWith("Line 5 of the degradation CSV ('resnet20,20,true,269434,2,x,", row.Message);
        var shortRow = Assert.Throws<FormatException>(() => DegradationResult.FromCsv(DegradationResult.CsvHeader + "\nplain8,8,false\n", 100));
        Assert.Contains("3 fields instead of 10", shortRow.Message);
    }

    [Fact]
    public void ToSvg_DrawsThePaperFig6Layout_PlainLeftResidualRight_OneLinePerNet()
    {
        string svg = Sample().ToSvg("C#, seed 1");
        Assert.StartsWith("<svg", svg);
        Assert.Equal(4, svg.Split("<polyline").Length - 1);
        Assert.Contains(">plain</text>", svg);
        Assert.Contains(">residual</text>", svg);
        Assert.Contains("Training error: C#, seed 1", svg);
        Assert.Contains("resnet56 (15.0%)", svg);
        // The left panel's lines (plain20, plain56) come first, then the right panel's: compare the x of each line's last point.
        var lastX = svg.Split('\n').Where(l => l.StartsWith("<polyline")).Select(l => double.Parse(l.Split(' ')[^1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(4, lastX.Length);
        Assert.Equal(lastX[0], lastX[1]); // the same iteration axis for both depths
        Assert.Equal(lastX[2], lastX[3]);
        Assert.Equal(430, lastX[2] - lastX[0]); // one panel width and the gap to the right
    }

    [Fact]
    public void Options_SelectTrainingImages_TakesTheSameNumberFromEachClass_AndANegativeCountIsRefusedFirst()
    {
        var data = TestData.Fashion(5);
        var subset = new DegradationOptions { TrainingImages = 20 }.SelectTrainingImages(data);
        Assert.Equal(20, subset.Count);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(2, Enumerable.Range(0, subset.Count).Count(i => subset.LabelOf(i) == c)));
        Assert.Same(data, new DegradationOptions { TrainingImages = 0 }.SelectTrainingImages(data));
        var ex = Assert.Throws<InvalidTrainingOptionException>(() => DegradationExperiment.Run(data, new DegradationOptions { TrainingImages = -1, Depths = [8] }));
        Assert.Equal("TrainingImages", ex.Option);
    }
}
