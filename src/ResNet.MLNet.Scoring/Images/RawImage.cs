namespace ResNet.Scoring;

/// <summary>A decoded image: bytes 0..255 in height-width-channel order.</summary>
/// <param name="Pixels">Height * Width * Channels bytes, row-major, channels interleaved.</param>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Channels">1 (gray) or 3 (RGB).</param>
public readonly record struct RawImage(byte[] Pixels, int Width, int Height, int Channels);
