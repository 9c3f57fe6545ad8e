namespace ResNet.MLNet.Transforms;

/// <summary>
/// Scores a batch of images: <paramref name="pixels"/> holds <paramref name="count"/> images of
/// C x H x W floats back to back; the result holds count x classes probabilities. Must be thread-safe.
/// </summary>
public delegate float[] BatchScorer(ReadOnlyMemory<float> pixels, int count);
