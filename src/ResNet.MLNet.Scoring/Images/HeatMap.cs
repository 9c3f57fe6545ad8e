namespace ResNet.Scoring;

/// <summary>
/// Draws a class-activation map (<see cref="OnnxScorer.ClassActivationMap"/>) over the image it explains: the map is
/// upsampled to the image's size, stretched to its own minimum..maximum, coloured from blue (least) through green to
/// red (most) and blended over the image.
/// </summary>
public static class HeatMap
{
    /// <summary>
    /// Bilinear upsampling of a [<paramref name="mapHeight"/>, <paramref name="mapWidth"/>] map to
    /// [<paramref name="height"/>, <paramref name="width"/>], pixel centres aligned (as the network's windows cover the
    /// whole image: the model input is the image resized, not cropped).
    /// </summary>
    /// <exception cref="ArgumentException">The map's length does not match its shape, or a size is not positive.</exception>
    public static float[] Upsample(ReadOnlySpan<float> map, int mapHeight, int mapWidth, int height, int width)
    {
        if (mapHeight < 1 || mapWidth < 1 || height < 1 || width < 1)
            throw new ArgumentException($"Sizes must be positive: map {mapHeight}x{mapWidth}, image {height}x{width}.");
        if (map.Length != mapHeight * mapWidth)
            throw new ArgumentException($"The map has {map.Length} values; {mapHeight}x{mapWidth} needs {mapHeight * mapWidth}.", nameof(map));
        var result = new float[height * width];
        for (int y = 0; y < height; y++)
        {
            var (y0, y1, fy) = Source(y, height, mapHeight);
            for (int x = 0; x < width; x++)
            {
                var (x0, x1, fx) = Source(x, width, mapWidth);
                float top = map[y0 * mapWidth + x0] * (1 - fx) + map[y0 * mapWidth + x1] * fx;
                float bottom = map[y1 * mapWidth + x0] * (1 - fx) + map[y1 * mapWidth + x1] * fx;
                result[y * width + x] = top * (1 - fy) + bottom * fy;
            }
        }
        return result;
    }

    // The two map cells around an output pixel's centre and the weight of the second one.
    private static (int Lo, int Hi, float Fraction) Source(int i, int size, int mapSize)
    {
        float s = Math.Clamp((i + 0.5f) * mapSize / size - 0.5f, 0f, mapSize - 1);
        int lo = (int)s;
        return (lo, Math.Min(lo + 1, mapSize - 1), s - lo);
    }

    /// <summary>The image with the map drawn over it (RGB; a gray image becomes RGB).</summary>
    /// <param name="image">The image the map explains, at any size.</param>
    /// <param name="map">The map, [<paramref name="mapHeight"/>, <paramref name="mapWidth"/>] row-major.</param>
    /// <param name="mapHeight">Rows of the map.</param>
    /// <param name="mapWidth">Columns of the map.</param>
    /// <param name="opacity">How much of each pixel is the map's colour, 0..1; default 0.5.</param>
    /// <exception cref="ArgumentException">The map's length does not match its shape, or the opacity is outside 0..1.</exception>
    public static RawImage Overlay(RawImage image, ReadOnlySpan<float> map, int mapHeight, int mapWidth, float opacity = 0.5f)
    {
        if (!(opacity is >= 0f and <= 1f))
            throw new ArgumentOutOfRangeException(nameof(opacity), opacity, "The opacity must be between 0 and 1.");
        var up = Upsample(map, mapHeight, mapWidth, image.Height, image.Width);
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in map) { min = Math.Min(min, v); max = Math.Max(max, v); }
        float range = max > min ? max - min : 1f;
        var pixels = new byte[image.Width * image.Height * 3];
        for (int i = 0; i < up.Length; i++)
        {
            var (r, g, b) = Colour((up[i] - min) / range);
            for (int c = 0; c < 3; c++)
            {
                byte original = image.Pixels[i * image.Channels + (image.Channels == 1 ? 0 : c)];
                float tint = c == 0 ? r : c == 1 ? g : b;
                pixels[i * 3 + c] = (byte)Math.Clamp(MathF.Round((1 - opacity) * original + opacity * 255f * tint), 0, 255);
            }
        }
        return new RawImage(pixels, image.Width, image.Height, 3);
    }

    /// <summary>Blue (0) - cyan - green (0.5) - yellow - red (1), the usual ramp of CAM figures.</summary>
    internal static (float R, float G, float B) Colour(float t)
    {
        t = Math.Clamp(t, 0f, 1f);
        return (Math.Clamp(4 * t - 2, 0, 1), Math.Clamp(t < 0.5f ? 4 * t : 4 - 4 * t, 0, 1), Math.Clamp(2 - 4 * t, 0, 1));
    }
}
