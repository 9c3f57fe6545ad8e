using System.Buffers.Binary;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace ResNet.Serving.Tests;

/// <summary>The real server on a loopback port, driven over HTTP: every endpoint and every bad request.</summary>
public sealed class ServerTests(ServingFixture f) : IClassFixture<ServingFixture>
{
    private static (OnnxScorer Scorer, float[] Image) Reference(string image)
    {
        var s = new OnnxScorer(ServingFixture.ModelPath);
        return (s, ImageTensors.Load(image, s.Info.Channels, s.Info.Height, s.Info.Width, s.Info.Normalization.Range));
    }

    private static string InferJson(float[] data, int n = 1, string datatype = "FP32", string shape = "[{0}, 1, 28, 28]", string outputs = "") =>
        $"{{\"id\":\"r1\",\"inputs\":[{{\"name\":\"input\",\"shape\":{string.Format(System.Globalization.CultureInfo.InvariantCulture, shape, n)},\"datatype\":\"{datatype}\"," +
        $"\"data\":[{string.Join(",", data.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}]}}]{outputs}}}";

    private async Task<(HttpStatusCode Status, JsonNode? Body)> Post(string path, HttpContent content)
    {
        using var r = await f.Http.PostAsync(path, content);
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    [Fact]
    public async Task ServerAndModelEndpoints_AnswerAsTheProtocolSays()
    {
        var meta = JsonNode.Parse(await f.Http.GetStringAsync("/v2"))!;
        Assert.Equal("resnet-serve", (string?)meta["name"]);
        Assert.Contains("classification", meta["extensions"]!.AsArray().Select(e => (string?)e));
        Assert.Equal(HttpStatusCode.OK, (await f.Http.GetAsync("/v2/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await f.Http.GetAsync("/v2/health/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await f.Http.GetAsync("/v2/models/model/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await f.Http.GetAsync("/v2/models/other/ready")).StatusCode);

        var model = JsonNode.Parse(await f.Http.GetStringAsync("/v2/models/model"))!;
        Assert.Equal("input", (string?)model["inputs"]![0]!["name"]);
        Assert.Equal("FP32", (string?)model["inputs"]![0]!["datatype"]);
        Assert.Equal([-1, 1, 28, 28], model["inputs"]![0]!["shape"]!.AsArray().Select(d => (int)d!));
        var outputs = model["outputs"]!.AsArray().ToDictionary(o => (string)o!["name"]!, o => o!["shape"]!.AsArray().Select(d => (int)d!).ToArray());
        Assert.Equal([-1, 10], outputs["probabilities"]);
        Assert.Equal([-1, 10], outputs["logits"]);
        Assert.Equal([-1, 64], outputs["features"]);
        Assert.Equal(10, model["parameters"]!["classes"]!.AsArray().Count);
    }

    [Fact]
    public async Task Infer_Json_GivesTheScorersProbabilities()
    {
        var (scorer, image) = Reference(Cli.SampleImage());
        using var _ = scorer;
        var expected = scorer.Score(image, 1);
        var (status, body) = await Post("/v2/models/model/infer", new StringContent(InferJson([.. image, .. image], 2), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("r1", (string?)body!["id"]);
        var probs = body["outputs"]!.AsArray().Single(o => (string?)o!["name"] == "probabilities")!;
        Assert.Equal([2, 10], probs["shape"]!.AsArray().Select(d => (int)d!));
        var values = probs["data"]!.AsArray().Select(v => (float)v!).ToArray();
        for (int c = 0; c < 10; c++)
        {
            Assert.Equal(expected.Probabilities[c], values[c], 5);
            Assert.Equal(expected.Probabilities[c], values[10 + c], 5);
        }
    }

    [Fact]
    public async Task Infer_Classification_GivesValueIndexLabelStrings()
    {
        var (scorer, image) = Reference(Cli.SampleImage("Trouser"));
        using var _ = scorer;
        var top = scorer.TopK(scorer.Score(image, 1), 0, 3);
        var (status, body) = await Post("/v2/models/model/infer", new StringContent(
            InferJson(image, outputs: ",\"outputs\":[{\"name\":\"probabilities\",\"parameters\":{\"classification\":3}}]"), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, status);
        var o = body!["outputs"]![0]!;
        Assert.Equal("BYTES", (string?)o["datatype"]);
        Assert.Equal([1, 3], o["shape"]!.AsArray().Select(d => (int)d!));
        var strings = o["data"]!.AsArray().Select(s => ((string)s!).Split(':')).ToArray();
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(top[i].Probability, float.Parse(strings[i][0], System.Globalization.CultureInfo.InvariantCulture), 5);
            Assert.Equal(top[i].Index, int.Parse(strings[i][1], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(top[i].Label, strings[i][2]);
        }
    }

    // Triton's binary-data extension: JSON header of Inference-Header-Content-Length bytes, then raw tensors.
    [Fact]
    public async Task Infer_BinaryData_ReadsAndWritesRawTensors()
    {
        var (scorer, image) = Reference(Cli.SampleImage("Bag"));
        using var _ = scorer;
        var expected = scorer.Score(image, 1);
        var top = scorer.TopK(expected, 0, 2);
        byte[] header = Encoding.UTF8.GetBytes(
            $"{{\"inputs\":[{{\"name\":\"input\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"parameters\":{{\"binary_data_size\":{image.Length * 4}}}}}]," +
            "\"outputs\":[{\"name\":\"logits\",\"parameters\":{\"binary_data\":true}},{\"name\":\"probabilities\",\"parameters\":{\"classification\":2,\"binary_data\":true}}]}");
        var body = new byte[header.Length + image.Length * 4];
        header.CopyTo(body, 0);
        for (int i = 0; i < image.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(body.AsSpan(header.Length + 4 * i), image[i]);
        var content = ServingFixture.Bytes(body);
        content.Headers.Add("Inference-Header-Content-Length", header.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var r = await f.Http.PostAsync("/v2/models/model/infer", content);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        int jsonLength = int.Parse(r.Headers.GetValues("Inference-Header-Content-Length").Single(), System.Globalization.CultureInfo.InvariantCulture);
        byte[] bytes = await r.Content.ReadAsByteArrayAsync();
        var json = JsonNode.Parse(bytes.AsSpan(0, jsonLength))!;
        var outputs = json["outputs"]!.AsArray();
        Assert.Equal(40, (int)outputs[0]!["parameters"]!["binary_data_size"]!);
        Assert.Null(outputs[0]!["data"]);
        int offset = jsonLength;
        for (int c = 0; c < 10; c++)
            Assert.Equal(expected.Logits[c], BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(offset + 4 * c)), 4);
        offset += 40;
        for (int i = 0; i < 2; i++)
        {
            int len = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset));
            string label = Encoding.UTF8.GetString(bytes, offset + 4, len);
            Assert.EndsWith($":{top[i].Index}:{top[i].Label}", label, StringComparison.Ordinal);
            offset += 4 + len;
        }
        Assert.Equal(bytes.Length, offset);
    }

    [Fact]
    public async Task Predict_RawAndMultipart_GiveTheScorersTopClass()
    {
        string path = Cli.SampleImage("Sandal", 1);
        var (scorer, image) = Reference(path);
        using var _ = scorer;
        var top = scorer.TopK(scorer.Score(image, 1), 0, 3);

        var (status, raw) = await Post("/v1/models/model/predict?top=3", ServingFixture.Bytes(File.ReadAllBytes(path), "image/png"));
        Assert.Equal(HttpStatusCode.OK, status);
        var got = raw!["predictions"]![0]!["top"]!.AsArray();
        Assert.Equal(3, got.Count);
        Assert.Equal(top.Select(t => t.Label), got.Select(g => (string?)g!["label"]));
        Assert.Equal(top[0].Probability, (float)got[0]!["probability"]!, 5);

        using var form = new MultipartFormDataContent
        {
            { ServingFixture.Bytes(File.ReadAllBytes(path), "image/png"), "image", "a.png" },
            { ServingFixture.Bytes(File.ReadAllBytes(Cli.SampleImage("Coat")), "image/png"), "image", "b.png" },
        };
        var (status2, multi) = await Post("/v1/models/model/predict", form);
        Assert.Equal(HttpStatusCode.OK, status2);
        Assert.Equal(["a.png", "b.png"], multi!["predictions"]!.AsArray().Select(p => (string?)p!["file"]));
        Assert.Equal(5, multi["predictions"]![0]!["top"]!.AsArray().Count);
        Assert.Equal(top[0].Label, (string?)multi["predictions"]![0]!["top"]![0]!["label"]);
    }

    [Fact]
    public async Task PageAndMetrics_AreServed()
    {
        string page = await f.Http.GetStringAsync("/");
        Assert.Contains("<input type=\"file\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", page, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", page, StringComparison.Ordinal);
        await f.Http.PostAsync("/v1/models/model/predict", ServingFixture.Bytes(File.ReadAllBytes(Cli.SampleImage()), "image/png"));
        await f.Http.PostAsync("/v1/models/model/predict", ServingFixture.Bytes([1, 2, 3], "image/png"));
        string metrics = await f.Http.GetStringAsync("/metrics");
        Assert.Matches(@"resnet_requests_total\{route=""/v1/models/\{name\}/predict"",code=""200""\} [1-9]", metrics);
        Assert.Matches(@"resnet_request_errors_total\{route=""/v1/models/\{name\}/predict""\} [1-9]", metrics);
        Assert.Matches(@"resnet_batch_size_count [1-9]", metrics);
        Assert.Contains("# TYPE resnet_request_duration_seconds histogram", metrics, StringComparison.Ordinal);
        Assert.Contains("resnet_queue_seconds_bucket{le=\"+Inf\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("resnet_queued_images{model=\"model\"} 0", metrics, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, int, string> BadInferRequests => new()
    {
        { "model", "{\"inputs\": [", 400, "not valid JSON" },
        { "model", InferJson(new float[784], shape: "[{0}, 3, 28, 28]"), 400, "takes [N, 1, 28, 28]" },
        { "model", InferJson(new float[784], datatype: "INT64"), 400, "takes FP32" },
        { "model", InferJson(new float[700]), 400, "has 700 values but shape [1, 1, 28, 28] needs 784" },
        { "model", "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"data\":[\"a\"]}]}", 400, "must be numbers" },
        { "model", "{\"inputs\":[{\"name\":\"image\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"data\":[]}]}", 400, "no input 'image'" },
        { "model", InferJson(new float[784], outputs: ",\"outputs\":[{\"name\":\"nope\"}]"), 400, "no output 'nope'" },
        { "model", "", 400, "body is empty" },
        { "resnet99", InferJson(new float[784]), 404, "Unknown model 'resnet99'" },
    };

    [Theory]
    [MemberData(nameof(BadInferRequests))]
    public async Task Infer_BadRequest_IsAJsonErrorNamingTheProblem(string model, string body, int status, string message)
    {
        var (code, json) = await Post($"/v2/models/{model}/infer", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(status, (int)code);
        Assert.Contains(message, (string?)json!["error"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Predict_BadImages_Are400Or413NamingTheProblem()
    {
        byte[] png = File.ReadAllBytes(Cli.SampleImage());
        var cases = new (byte[] Body, int Status, string Message)[]
        {
            ([], 400, "body is empty"),
            (png[..(png.Length / 2)], 400, "truncated"),
            (Encoding.ASCII.GetBytes("this is not an image"), 400, "is not a PNG, JPEG, BMP or WebP image"),
            (BigPng(2000, 10), 400, "2000x10 pixels; the limit is 1024"),
            (new byte[300 * 1024], 413, "limit is 262144"),
        };
        foreach (var (body, status, message) in cases)
        {
            var (code, json) = await Post("/v1/models/model/predict", ServingFixture.Bytes(body, "image/png"));
            Assert.Equal(status, (int)code);
            Assert.Contains(message, (string?)json!["error"], StringComparison.Ordinal);
        }
    }

    // A real PNG of the given size, small on the wire (one colour compresses well).
    private static byte[] BigPng(int width, int height)
    {
        using var bitmap = new SkiaSharp.SKBitmap(width, height);
        bitmap.Erase(SkiaSharp.SKColors.Gray);
        using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
