using System.Buffers.Binary;
using System.Text;
using ResNet.Trainer.Training;
using Xunit;

namespace ResNet.Trainer.Tests.Training;

public class TensorBoardWriterTests
{
    [Fact]
    public void EventFile_HasValidCrcs_AndTheReportedScalars()
    {
        string dir = Directory.CreateTempSubdirectory("tb-").FullName;
        var events = new[]
        {
            new TrainingProgress(ProgressKind.Iteration, 1, 2, 10, 40, 2.25, 0.75, null, null, 0.1, 123.5, TimeSpan.Zero),
            new TrainingProgress(ProgressKind.Message, 1, 2, 10, 40, 0, 0, null, null, 0, 0, TimeSpan.Zero, "a note"),
            new TrainingProgress(ProgressKind.Epoch, 1, 2, 20, 40, 1.5, 0.5, 0.625, 1.75, 0.01, 200, TimeSpan.Zero),
        };
        var writer = new TensorBoardWriter(dir);
        foreach (var e in events) writer.Report(e);
        writer.WriteConfusionMatrix(["a", "b"], [[3, 1], [0, 4]], 1);

        string file = Assert.Single(Directory.GetFiles(dir, "events.out.tfevents.*"));
        var records = ReadRecords(File.ReadAllBytes(file));
        Assert.Equal("brain.Event:2", Assert.IsType<string>(records[0].FileVersion));
        var scalars = records.Where(r => r.Tag is not null && r.Value is float).Select(r => (r.Step, r.Tag!, r.Value!.Value)).ToList();
        var expected = events.SelectMany(e => { var (s, list) = TensorBoardWriter.ScalarsOf(e); return list.Select(x => ((long)s, x.Tag, x.Value)); }).ToList();
        Assert.Equal(10, expected.Count);   // 4 per iteration, 6 per validated epoch, none for the message
        Assert.Equal(expected, scalars);
        Assert.Contains((10L, "train/loss", 2.25f), scalars);
        Assert.Contains((1L, "epoch/validation_error", 0.625f), scalars);
        Assert.Contains(records, r => r.Tag?.StartsWith("confusion_matrix") == true);
        Assert.Contains("| a | 3 | 1 |", Encoding.UTF8.GetString(File.ReadAllBytes(file)));
    }

    private sealed record Record(long Step, string? FileVersion, string? Tag, float? Value);

    // TFRecord framing: uint64 length, masked CRC-32C of the length bytes, the Event protobuf, masked CRC-32C of it.
    private static List<Record> ReadRecords(byte[] bytes)
    {
        var list = new List<Record>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            var lengthBytes = bytes.AsSpan(pos, 8);
            long length = BinaryPrimitives.ReadInt64LittleEndian(lengthBytes);
            Assert.Equal(Masked(Crc32C(lengthBytes)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 8, 4)));
            var data = bytes.AsSpan(pos + 12, (int)length);
            Assert.Equal(Masked(Crc32C(data)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 12 + (int)length, 4)));
            list.AddRange(ParseEvent(data.ToArray()));
            pos += 16 + (int)length;
        }
        return list;
    }

    // Event: 1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary { 1 value { 1 tag, 2 simple_value (float) } }.
    private static IEnumerable<Record> ParseEvent(byte[] e)
    {
        long step = 0; string? version = null; var values = new List<(string?, float?)>();
        foreach (var (field, wire, varint, payload) in Fields(e))
        {
            if (field == 2) step = (long)varint;
            else if (field == 3) version = Encoding.UTF8.GetString(payload);
            else if (field == 5)
                foreach (var (f, _, _, value) in Fields(payload))
                    if (f == 1)
                    {
                        string? tag = null; float? v = null;
                        foreach (var (vf, vw, _, vp) in Fields(value))
                            if (vf == 1) tag = Encoding.UTF8.GetString(vp);
                            else if (vf == 2 && vw == 5) v = BinaryPrimitives.ReadSingleLittleEndian(vp);
                        values.Add((tag, v));
                    }
        }
        if (values.Count == 0) yield return new Record(step, version, null, null);
        foreach (var (tag, v) in values) yield return new Record(step, version, tag, v);
    }

    private static IEnumerable<(int Field, int Wire, ulong Varint, byte[] Payload)> Fields(byte[] m)
    {
        int i = 0;
        ulong Varint() { ulong r = 0; int shift = 0; byte b; do { b = m[i++]; r |= (ulong)(b & 0x7F) << shift; shift += 7; } while ((b & 0x80) != 0); return r; }
        while (i < m.Length)
        {
            ulong key = Varint();
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, wire, Varint(), []); break;
                case 1: yield return (field, wire, 0, m[i..(i + 8)]); i += 8; break;
                case 2: { int n = (int)Varint(); yield return (field, wire, 0, m[i..(i + n)]); i += n; break; }
                case 5: yield return (field, wire, 0, m[i..(i + 4)]); i += 4; break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }
    }

    private static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }

    private static uint Masked(uint crc) => ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
