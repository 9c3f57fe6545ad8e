namespace ResNet.Serving.Tests;

/// <summary>The scorer's new batching options, used directly.</summary>
public sealed class ScorerQueueTests
{
    private static float[] Image(OnnxScorer s) =>
        ImageTensors.Load(Cli.SampleImage(), s.Info.Channels, s.Info.Height, s.Info.Width, s.Info.Normalization.Range);

    [Fact]
    public async Task MaxQueueDelay_MergesRequestsThatArriveWhileWaiting()
    {
        var batches = new List<BatchStats>();
        using var scorer = new OnnxScorer(ServingFixture.ModelPath, new OnnxScorerOptions
        {
            MaxQueueDelay = TimeSpan.FromSeconds(5), MaxBatchSize = 4, BatchCompleted = b => { lock (batches) batches.Add(b); },
        });
        var image = Image(scorer);
        var expected = scorer.Score(image, 1);
        long runs = scorer.RunCount;
        // Four one-image requests fill the batch: the first waits for the other three, and they run once.
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => scorer.ScoreAsync(image, 1)));
        Assert.Equal(runs + 1, scorer.RunCount);
        Assert.Equal(4, batches.Single().Images);
        Assert.Equal(4, batches.Single().Requests);
        Assert.All(results, r => Assert.Equal(expected.Probabilities, r.Probabilities));
        Assert.Equal(0, scorer.QueuedImages);
    }

    [Fact]
    public async Task MaxQueuedImages_FailsFastWhenFull_ThenAcceptsAgain()
    {
        using var scorer = new OnnxScorer(ServingFixture.ModelPath, new OnnxScorerOptions { MaxQueueDelay = TimeSpan.FromSeconds(1), MaxQueuedImages = 2 });
        var image = Image(scorer);
        var first = scorer.ScoreAsync(image, 1);
        var second = scorer.ScoreAsync(image, 1);
        var ex = Assert.Throws<ScorerQueueFullException>(() => { _ = scorer.ScoreAsync(image, 1); });
        Assert.Equal(2, ex.Capacity);
        Assert.Contains("queue is full (2 images waiting)", ex.Message, StringComparison.Ordinal);
        await Task.WhenAll(first, second);
        Assert.Equal(0, scorer.QueuedImages);
        Assert.Equal(10, (await scorer.ScoreAsync(image, 1)).ClassCount);
    }

    [Fact]
    public void Defaults_KeepTodaysBehaviour()
    {
        var o = new OnnxScorerOptions();
        Assert.Equal(TimeSpan.Zero, o.MaxQueueDelay);
        Assert.Equal(0, o.MaxQueuedImages);
        Assert.Throws<ArgumentOutOfRangeException>(() => new OnnxScorer(ServingFixture.ModelPath, new OnnxScorerOptions { MaxQueuedImages = -1 }));
    }
}
