namespace ResNet.Scoring.Quantization;

/// <summary>
/// The calibration images cannot give activation ranges: the folder is missing, empty, or holds fewer decodable
/// images than <see cref="QuantizationOptions.MinimumCalibrationImages"/>. The message names the folder and how many are needed.
/// </summary>
public sealed class CalibrationDataException(string message) : ArgumentException(message);
