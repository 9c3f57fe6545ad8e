using ResNet.Trainer.Data;
using Xunit.Abstractions;

namespace ResNet.Cli.Tests.BadInput;

/// <summary>
/// Hostile but realistic inputs to the real <c>resnet</c> command (in process). For each: the exit code, a message
/// naming the input, no stack trace, and the user's model, checkpoint and metrics keep their bytes.
/// </summary>
public sealed class CliBadInputTests(ITestOutputHelper log)
{
    /// <summary>One hostile input: the arguments (built against the fixture), the exit code, and what the message must name.</summary>
    public sealed record Case(string[] Args, int Code, params string[] Names)
    {
        /// <summary>An extra check on (stdout, stderr).</summary>
        public Action<string, string>? Check { get; init; }
    }

    private static Hostile H => Hostile.Shared.Value;
    private const string Gone = "/nonexistent-resnet-input";
    // Tests run as root in CI, and root writes through chmod 000: a folder under /proc cannot be created by anyone.
    private const string Unwritable = "/proc/resnet-cannot-write-here";

    private static string[] T(params string[] more) => ["train", "--arch", "resnet8", "--epochs", "1", "--batch-size", "10", .. more];

    private static readonly Dictionary<string, Func<Hostile, Case>> Cases = new()
    {
        // --- train: the data ---------------------------------------------------------------------------
        ["train_data_missing"] = h => new(T("--data", Gone, "--output", h.Fresh("o")), 2, Gone),
        ["train_data_is_a_file"] = h => new(T("--data", h.ModelDat, "--output", h.Fresh("o")), 2, h.ModelDat, "is a file"),
        ["train_data_loose_images"] = h =>
        {
            string d = h.Fresh("loose");
            File.Copy(Directory.EnumerateFiles(h.Train, "*.png", SearchOption.AllDirectories).First(), Path.Combine(d, "a.png"));
            return new(T("--data", d, "--output", h.Fresh("o")), 2, d, "no class subfolders");
        },
        ["train_data_one_class"] = h =>
        {
            string d = h.CopyOfTrain("one");
            foreach (var c in Directory.GetDirectories(d).Skip(1)) Directory.Delete(c, true);
            return new(T("--data", d, "--output", h.Fresh("o")), 2, d, "only one class");
        },
        ["train_data_empty_class_folder"] = h =>
        {
            string d = h.CopyOfTrain("emptyclass");
            Directory.CreateDirectory(Path.Combine(d, "Zebra"));
            return new(T("--data", d, "--output", h.Fresh("o")), 2, "Zebra", "has no images");
        },
        ["train_data_class_of_text_files"] = h =>
        {
            string d = h.CopyOfTrain("textclass");
            Directory.CreateDirectory(Path.Combine(d, "Zebra"));
            File.WriteAllText(Path.Combine(d, "Zebra", "notes.txt"), "x");
            return new(T("--data", d, "--output", h.Fresh("o")), 2, "Zebra", "no images");
        },
        ["train_data_text_file_strict"] = h =>
        {
            string d = h.CopyOfTrain("textstrict");
            File.WriteAllText(Path.Combine(d, "Dress", "readme.txt"), "x");
            return new(T("--data", d, "--output", h.Fresh("o"), "--strict-images"), 2, "readme.txt", "not an image file");
        },
        ["train_truncated_png_strict"] = h =>
        {
            string d = h.CopyOfTrain("trunc-strict");
            string bad = Path.Combine(d, "Coat", "000-bad.png");
            Hostile.Truncated(Directory.EnumerateFiles(Path.Combine(d, "Coat")).First(), bad, 0.6);
            return new(T("--data", d, "--output", h.Fresh("o"), "--strict-images"), 2, bad, "truncated");
        },
        ["train_truncated_png_skipped"] = h =>
        {
            string d = h.CopyOfTrain("trunc-skip");
            string bad = Path.Combine(d, "Coat", "000-bad.png");
            Hostile.Truncated(Directory.EnumerateFiles(Path.Combine(d, "Coat")).First(), bad, 0.6);
            return new(T("--data", d, "--output", h.Fresh("o")), 0, bad, "warning: Skipped")
            { Check = (o, _) => Assert.Contains("(30 images, 5 classes)", o) };
        },
        ["train_zero_byte_png_skipped"] = h =>
        {
            string d = h.CopyOfTrain("zero");
            string bad = Path.Combine(d, "Dress", "empty.png");
            File.WriteAllBytes(bad, []);
            return new(T("--data", d, "--output", h.Fresh("o")), 0, bad, "zero-byte") { Check = (o, _) => Assert.Contains("(30 images", o) };
        },
        ["train_png_that_is_text_skipped"] = h =>
        {
            string d = h.CopyOfTrain("fakepng");
            string bad = Path.Combine(d, "Dress", "fake.png");
            File.WriteAllText(bad, "this is not a PNG");
            return new(T("--data", d, "--output", h.Fresh("o")), 0, bad, "not a decodable image");
        },
        ["train_huge_outlier_image_first"] = h =>
        {
            string d = h.CopyOfTrain("outlier");
            // 8000x8000 sorting first in the first class: the training size must stay the common 28x28.
            ImageDecoder.SavePng(new RawImage(new byte[8000 * 8000], 8000, 8000, 1), Path.Combine(d, "Coat", "0000-huge.png"));
            return new(T("--data", d, "--output", h.Fresh("o")), 0, "28x28", "the most common of 2 sizes (30 of 31 images");
        },
        ["train_idx_truncated"] = h =>
        {
            string d = h.Fresh("idx");
            foreach (var f in Directory.GetFiles("/usr/share/datasets/fashion-mnist")) File.Copy(f, Path.Combine(d, Path.GetFileName(f)));
            string images = Directory.GetFiles(d, "train-images*").First();
            Hostile.Truncated(images, images, 0.001);
            return new(T("--data", d, "--output", h.Fresh("o")), 2, "train-images");
        },
        ["train_cifar_bad_batch"] = h =>
        {
            string d = h.Fresh("cifar");
            File.WriteAllBytes(Path.Combine(d, "data_batch_1.bin"), new byte[1000]);
            return new(T("--data", d, "--output", h.Fresh("o")), 2, "data_batch_1.bin");
        },
        ["train_symlink_loop_in_class"] = h =>
        {
            string d = h.CopyOfTrain("loop");
            Directory.CreateSymbolicLink(Path.Combine(d, "Dress", "up"), "..");
            Directory.CreateSymbolicLink(Path.Combine(d, "Coat", "again"), d);
            return new(T("--data", d, "--output", h.Fresh("o")), 0, "(30 images, 5 classes)");
        },
        ["train_class_linked_outside_root"] = h =>
        {
            string d = h.CopyOfTrain("outside");
            Directory.CreateSymbolicLink(Path.Combine(d, "Zlinked"), Path.Combine(h.Data, "test", "Dress"));
            return new(T("--data", d, "--output", h.Fresh("o")), 0, "(30 images, 5 classes)");
        },
        ["train_test_missing"] = h => new(T("--data", h.Train, "--test", Gone, "--output", h.Fresh("o")), 2, Gone),
        ["train_test_other_classes"] = h =>
        {
            string t = h.CopyOfTrain("othertest");
            Directory.Move(Path.Combine(t, "Coat"), Path.Combine(t, "Jacket"));
            return new(T("--data", h.Data, "--output", h.Fresh("o"), "--test", t), 2, "Jacket");
        },
        // --- train: options ----------------------------------------------------------------------------
        ["train_unknown_arch"] = h => new(["train", "--data", h.Train, "--arch", "resnet7", "--output", h.Fresh("o")], 2, "resnet7"),
        ["train_unknown_recipe"] = h => new(T("--data", h.Train, "--recipe", "paper-mnist", "--output", h.Fresh("o")), 2, "paper-mnist", "fast-cpu"),
        ["train_cuda_unavailable"] = h => new(T("--data", h.Train, "--device", "cuda", "--output", h.Fresh("o")), 2, "CUDA is not available"),
        ["train_bad_normalize"] = h => new(T("--data", h.Train, "--normalize", "zscore", "--output", h.Fresh("o")), 2, "zscore", "per-pixel"),
        ["train_bad_test_mode"] = h => new(T("--data", h.Train, "--test-mode", "twenty-crop", "--output", h.Fresh("o")), 2, "twenty-crop", "ten-crop"),
        ["train_bad_schedule"] = h => new(T("--data", h.Train, "--schedule", "sawtooth", "--output", h.Fresh("o")), 2, "sawtooth"),
        ["train_bad_augment"] = h => new(T("--data", h.Train, "--augment", "mixup", "--output", h.Fresh("o")), 2, "mixup"),
        ["train_augment_bad_padding"] = h => new(T("--data", h.Train, "--augment", "cifar:99", "--output", h.Fresh("o")), 2, "cifar:99", "from 0 to 64"),
        ["train_channels_2"] = h => new(T("--data", h.Train, "--channels", "2", "--output", h.Fresh("o")), 2, "--channels 2", "1 (grayscale) or 3 (RGB)"),
        ["train_epochs_not_a_number"] = h => new(["train", "--data", h.Train, "--epochs", "many", "--output", h.Fresh("o")], 2,
            "error: --epochs many is not valid: give a whole number", "`resnet train --help`"),
        ["train_epochs_twice"] = h => new(T("--data", h.Train, "--epochs", "3", "--output", h.Fresh("o")), 2, "error: Option '--epochs' expects a single argument"),
        ["train_unknown_option"] = h => new(T("--data", h.Train, "--learning-rate", "0.1"), 2,
            "error: Unrecognized command or argument '--learning-rate'", "`resnet train --help`"),
        // --- train: the output folder, checked before training ------------------------------------------
        ["train_output_is_a_file"] = h => new(T("--data", h.Train, "--output", h.ModelDat), 2, h.ModelDat, "existing file"),
        ["train_output_unwritable"] = h => new(T("--data", h.Train, "--output", Unwritable), 2, Unwritable, "cannot be written"),
        ["train_output_equals_data"] = h => new(T("--data", h.Train, "--output", h.Train), 2, h.Train, "inside the data folder"),
        ["train_output_inside_data"] = h => new(T("--data", h.Data, "--output", Path.Combine(h.Data, "run")), 2, Path.Combine(h.Data, "run"), "inside the data folder"),
        // --- train: resuming ---------------------------------------------------------------------------
        ["train_resume_truncated_checkpoint"] = h =>
        {
            string ckpt = Hostile.Truncated(h.Checkpoint, Path.Combine(h.Fresh("trunc-ckpt"), "last.ckpt"), 0.5);
            return new(T("--data", h.Train, "--output", h.Fresh("o"), "--resume", ckpt), 2, ckpt, "truncated or damaged");
        },
        ["train_resume_header_only_checkpoint"] = h =>
        {
            string ckpt = Hostile.Truncated(h.Checkpoint, Path.Combine(h.Fresh("trunc-ckpt2"), "last.ckpt"), 0.002);
            return new(T("--data", h.Train, "--output", h.Fresh("o"), "--resume", ckpt), 2, ckpt);
        },
        ["train_resume_missing_checkpoint"] = h => new(T("--data", h.Train, "--output", h.Fresh("o"), "--resume", Gone + "/last.ckpt"), 2, Gone + "/last.ckpt", "does not exist"),
        ["train_resume_folder"] = h => new(T("--data", h.Train, "--output", h.Fresh("o"), "--resume", Path.Combine(h.User, "checkpoints")), 2, "is a folder"),
        ["train_resume_not_a_checkpoint"] = h => new(T("--data", h.Train, "--output", h.Fresh("o"), "--resume", h.ModelDat), 2, h.ModelDat, "last.ckpt"),
        ["train_resume_other_architecture"] = h => new(["train", "--data", h.Train, "--arch", "resnet14", "--epochs", "1", "--output", h.Fresh("o"), "--resume", h.Checkpoint], 2, h.Checkpoint, "resnet8", "resnet14")
        { Check = (_, e) => Assert.DoesNotContain("--checkpoint-dir", e) },
        ["train_resume_other_classes"] = h =>
        {
            string d = h.CopyOfTrain("otherclasses");
            Directory.Move(Path.Combine(d, "Coat"), Path.Combine(d, "Jacket"));
            return new(T("--data", d, "--output", h.Fresh("o"), "--resume", h.Checkpoint), 2, h.Checkpoint, "Jacket");
        },
        // --- evaluate ----------------------------------------------------------------------------------
        ["evaluate_model_missing"] = h => new(["evaluate", "--model", Gone + "/model.dat", "--data", h.Data], 2, Gone + "/model.dat"),
        ["evaluate_model_truncated_dat"] = h =>
        {
            string d = h.Fresh("tdat");
            string dat = Hostile.Truncated(h.ModelDat, Path.Combine(d, "model.dat"), 0.5);
            File.Copy(Path.Combine(h.User, "model.json"), Path.Combine(d, "model.json"));
            return new(["evaluate", "--model", dat, "--data", h.Data], 2, dat, "truncated");
        },
        ["evaluate_model_corrupt_json"] = h =>
        {
            string d = h.Fresh("cjson");
            File.Copy(h.ModelDat, Path.Combine(d, "model.dat"));
            File.WriteAllText(Path.Combine(d, "model.json"), "{ \"Spec\": ");
            return new(["evaluate", "--model", Path.Combine(d, "model.dat"), "--data", h.Data], 2, Path.Combine(d, "model.json"), "not valid JSON");
        },
        ["evaluate_model_json_empty_object"] = h =>
        {
            string d = h.Fresh("ejson");
            File.Copy(h.ModelDat, Path.Combine(d, "model.dat"));
            File.WriteAllText(Path.Combine(d, "model.json"), "{}");
            return new(["evaluate", "--model", Path.Combine(d, "model.dat"), "--data", h.Data], 2, Path.Combine(d, "model.json"), "lacks");
        },
        ["evaluate_model_without_json"] = h =>
        {
            string d = h.Fresh("nojson");
            File.Copy(h.ModelDat, Path.Combine(d, "model.dat"));
            return new(["evaluate", "--model", Path.Combine(d, "model.dat"), "--data", h.Data], 2, Path.Combine(d, "model.json"));
        },
        // evaluate scores an ONNX model (fp32 or int8) through ONNX Runtime; the views that need the weights are refused.
        ["evaluate_model_onnx_ten_crop"] = h => new(["evaluate", "--model", h.ModelOnnx, "--data", h.Data, "--mode", "ten-crop"], 2, "--mode ten-crop", "model.dat"),
        ["evaluate_model_folder_without_dat"] = h => new(["evaluate", "--model", h.Fresh("nodat"), "--data", h.Data], 2, "is a folder without model.dat"),
        ["evaluate_data_other_classes"] = h =>
        {
            string d = h.CopyOfTrain("evalclasses");
            Directory.Move(Path.Combine(d, "Coat"), Path.Combine(d, "Jacket"));
            return new(["evaluate", "--model", h.ModelDat, "--data", d, "--output", h.Fresh("o")], 2, "Jacket");
        },
        ["evaluate_bad_mode"] = h => new(["evaluate", "--model", h.ModelDat, "--data", h.Data, "--mode", "hundred-crop", "--output", h.Fresh("o")], 2, "hundred-crop"),
        ["evaluate_output_is_a_file"] = h => new(["evaluate", "--model", h.ModelDat, "--data", h.Data, "--output", h.ModelOnnx], 2, h.ModelOnnx, "existing file"),
        ["evaluate_output_unwritable"] = h => new(["evaluate", "--model", h.ModelDat, "--data", h.Data, "--output", Unwritable], 2, Unwritable),
        ["evaluate_truncated_png_strict"] = h =>
        {
            string d = h.CopyOfTrain("evaltrunc");
            string bad = Hostile.Truncated(Directory.EnumerateFiles(Path.Combine(d, "Dress")).First(), Path.Combine(d, "Dress", "000-cut.png"), 0.6);
            return new(["evaluate", "--model", h.ModelDat, "--data", d, "--output", h.Fresh("o"), "--strict-images"], 2, bad);
        },
        ["evaluate_truncated_png_skipped"] = h =>
        {
            string d = h.CopyOfTrain("evaltrunc2");
            string bad = Hostile.Truncated(Directory.EnumerateFiles(Path.Combine(d, "Dress")).First(), Path.Combine(d, "Dress", "000-cut.png"), 0.6);
            return new(["evaluate", "--model", h.ModelDat, "--data", d, "--output", h.Fresh("o")], 0, bad) { Check = (o, _) => Assert.Contains("on 30 images", o) };
        },
        // --- export ------------------------------------------------------------------------------------
        ["export_weights_txt"] = h =>
        {
            string txt = Path.Combine(h.Fresh("txt"), "weights.txt");
            File.WriteAllText(txt, "0.1 0.2");
            return new(["export", "--arch", "resnet8", "--weights", txt, "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, txt, ".safetensors")
            { Check = (_, e) => Assert.DoesNotContain("old PyTorch", e) };
        },
        ["export_weights_onnx"] = h => new(["export", "--arch", "resnet8", "--weights", h.ModelOnnx, "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, h.ModelOnnx, "ONNX model"),
        ["export_weights_ckpt"] = h => new(["export", "--arch", "resnet8", "--weights", h.Checkpoint, "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, h.Checkpoint, "checkpoint"),
        ["export_weights_missing"] = h => new(["export", "--arch", "resnet8", "--weights", Gone + "/w.pth", "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, Gone + "/w.pth"),
        ["export_weights_truncated_dat"] = h =>
        {
            string dat = Hostile.Truncated(h.ModelDat, Path.Combine(h.Fresh("tdat2"), "model.dat"), 0.3);
            return new(["export", "--arch", "resnet8", "--channels", "1", "--classes", "5", "--weights", dat, "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, dat);
        },
        ["export_weights_pth_garbage"] = h =>
        {
            string pth = Path.Combine(h.Fresh("pth"), "w.pth");
            File.WriteAllText(pth, "not a pickle");
            return new(["export", "--arch", "resnet8", "--weights", pth, "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, pth);
        },
        ["export_weights_other_architecture"] = h => new(["export", "--arch", "resnet20", "--channels", "1", "--classes", "5", "--weights", h.ModelDat, "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, h.ModelDat, "does not match")
        { Check = (_, e) => Assert.DoesNotContain("strict", e) },
        ["export_class_names_empty"] = h =>
        {
            string names = Path.Combine(h.Fresh("names"), "classes.txt");
            File.WriteAllText(names, "\n  \n");
            return new(["export", "--arch", "resnet8", "--weights", h.ModelDat, "--class-names", names, "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, names, "empty");
        },
        ["export_class_names_count_mismatch"] = h =>
        {
            string names = Path.Combine(h.Fresh("names2"), "classes.txt");
            File.WriteAllLines(names, ["a", "b", "c"]);
            return new(["export", "--arch", "resnet8", "--weights", h.ModelDat, "--class-names", names, "--classes", "5", "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, names, "--classes is 5");
        },
        ["export_mean_wrong_count"] = h => new(["export", "--arch", "resnet8", "--channels", "1", "--classes", "5", "--weights", h.ModelDat, "--mean", "0.4,0.5", "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, "--mean", "2 value(s)"),
        ["export_mean_not_a_number"] = h => new(["export", "--arch", "resnet8", "--weights", h.ModelDat, "--mean", "a,b,c", "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, "--mean", "'a'"),
        ["export_bad_range"] = h => new(["export", "--arch", "resnet8", "--weights", h.ModelDat, "--range", "0..100", "--output", Path.Combine(h.Fresh("o"), "m.onnx")], 2, "0..100"),
        ["export_output_is_a_folder"] = h => new(["export", "--arch", "resnet8", "--channels", "1", "--classes", "5", "--weights", h.ModelDat, "--output", h.User], 2, h.User, "is a folder"),
        ["export_output_unwritable"] = h => new(["export", "--arch", "resnet8", "--channels", "1", "--classes", "5", "--weights", h.ModelDat, "--output", Unwritable + "/m.onnx"], 2, Unwritable),
        ["export_over_users_model_file"] = h => new(["export", "--arch", "resnet14", "--channels", "1", "--classes", "5", "--weights", h.ModelDat, "--output", h.ModelOnnx], 2, h.ModelDat),
        // --- predict -----------------------------------------------------------------------------------
        ["predict_model_missing"] = h => new(["predict", "--model", Gone + "/m.onnx", h.Train], 2, Gone + "/m.onnx"),
        ["predict_model_folder_without_onnx"] = h => new(["predict", "--model", h.Fresh("noonnx"), h.Train], 2, "is a folder without model.onnx"),
        ["predict_model_is_weights"] = h => new(["predict", "--model", h.ModelDat, h.Train], 2, h.ModelDat),
        ["predict_model_truncated_onnx"] = h =>
        {
            string onnx = Hostile.Truncated(h.ModelOnnx, Path.Combine(h.Fresh("tonnx"), "m.onnx"), 0.5);
            return new(["predict", "--model", onnx, h.Train], 2, onnx);
        },
        ["predict_labels_empty"] = h =>
        {
            string labels = Path.Combine(h.Fresh("labels"), "labels.txt");
            File.WriteAllText(labels, "");
            return new(["predict", "--model", h.ModelOnnx, "--labels", labels, h.Train], 2, labels, "empty");
        },
        ["predict_labels_missing"] = h => new(["predict", "--model", h.ModelOnnx, "--labels", Gone + "/labels.txt", h.Train], 2, Gone + "/labels.txt"),
        ["predict_labels_count_mismatch"] = h =>
        {
            string labels = Path.Combine(h.Fresh("labels2"), "labels.txt");
            File.WriteAllLines(labels, ["a", "b"]);
            return new(["predict", "--model", h.ModelOnnx, "--labels", labels, h.Train], 2, "2");
        },
        ["predict_image_missing"] = h => new(["predict", "--model", h.ModelOnnx, Gone + "/cat.png"], 2, Gone + "/cat.png"),
        ["predict_folder_without_images"] = h => new(["predict", "--model", h.ModelOnnx, h.Fresh("noimages")], 2, "No images found"),
        ["predict_folder_with_one_truncated_image"] = h =>
        {
            string d = h.CopyOfTrain("predtrunc");
            string bad = Hostile.Truncated(Directory.EnumerateFiles(Path.Combine(d, "Dress")).First(), Path.Combine(d, "Dress", "000-cut.png"), 0.6);
            return new(["predict", "--model", h.ModelOnnx, "--top", "1", d], 2, bad, "1 of 31 image(s) could not be read")
            { Check = (o, _) => Assert.Equal(31, o.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length) }; // header + 30 results
        },
        ["predict_zero_byte_image"] = h =>
        {
            string bad = Path.Combine(h.Fresh("zero"), "empty.png");
            File.WriteAllBytes(bad, []);
            return new(["predict", "--model", h.ModelOnnx, bad], 2, bad, "zero-byte");
        },
        ["predict_symlink_loops"] = h =>
        {
            string d = h.CopyOfTrain("predloop");
            Directory.CreateSymbolicLink(Path.Combine(d, "Dress", "up"), "..");
            Directory.CreateSymbolicLink(Path.Combine(d, "Coat", "root"), d);
            return new(["predict", "--model", h.ModelOnnx, "--top", "1", "--json", d], 0)
            { Check = (o, _) => Assert.Equal(30, System.Text.Json.JsonDocument.Parse(o).RootElement.GetArrayLength()) };
        },
        ["predict_bad_device"] = h => new(["predict", "--model", h.ModelOnnx, "--device", "tpu", h.Train], 2, "tpu"),
        ["predict_cuda_only_without_cuda"] = h => new(["predict", "--model", h.ModelOnnx, "--device", "cuda-only", h.Train], 2, "CUDA")
        {
            Check = (_, e) => { Assert.DoesNotContain("CUDA 12", e); Assert.True(e.Contains("CUDA 13") || e.Contains("no CUDA execution provider"), e); },
        },
        // --- info and experiment -------------------------------------------------------------------------
        ["info_unknown_arch"] = _ => new(["info", "resnet7"], 2, "resnet7"),
        ["info_bad_channels"] = _ => new(["info", "resnet20", "--channels", "0"], 2, "0"),
        ["experiment_depths_not_numbers"] = h => new(["experiment", "degradation", "--depths", "20,abc", "--output", h.Fresh("o")], 2, "abc"),
        ["experiment_depth_not_6n_plus_2"] = h => new(["experiment", "degradation", "--depths", "21", "--data", h.Train, "--output", h.Fresh("o")], 2, "21"),
        ["experiment_negative_subset"] = h => new(["experiment", "degradation", "--subset", "-1", "--data", h.Train, "--output", h.Fresh("o")], 2, "--subset"),
        ["experiment_output_is_a_file"] = h => new(["experiment", "degradation", "--data", h.Train, "--output", h.ModelDat], 2, h.ModelDat, "existing file"),
        ["experiment_data_missing"] = h => new(["experiment", "degradation", "--data", Gone, "--output", h.Fresh("o")], 2, Gone),
        ["demo_data_missing"] = h => new(["demo", "--data", Gone, "--output", h.Fresh("o")], 2, Gone),
        // --- what the parser refuses: one error line naming the flag, where the options are listed, exit 2 --------------
        ["train_threads_not_a_number"] = h => new(T("--data", h.Train, "--output", h.Fresh("o"), "--threads", "abc"), 2,
            "error: --threads abc is not valid: give a whole number", "`resnet train --help`"),
        ["train_lr_with_a_decimal_comma"] = h => new(T("--data", h.Train, "--output", h.Fresh("o"), "--lr", "0,5"), 2,
            "error: --lr 0,5 is not valid: give a number, with a point for decimals"),
        ["train_without_data"] = h => new(T("--output", h.Fresh("o")), 2, "error: Option '--data' is required."),
        ["evaluate_tta_shift_not_whole"] = h => new(["evaluate", "--model", h.ModelDat, "--data", h.Data, "--tta-shift", "1.5"], 2,
            "error: --tta-shift 1.5 is not valid: give a whole number", "`resnet evaluate --help`"),
        ["experiment_seeds_not_a_number"] = h => new(["experiment", "degradation", "--data", h.Train, "--output", h.Fresh("o"), "--seed", "x"], 2,
            "--seed x is not valid", "`resnet experiment degradation --help`"),
        ["train_flag_given_a_value"] = h => new(T("--data", h.Train, "--output", h.Fresh("o"), "--no-decay-norm-and-bias", "yes"), 2,
            "error: Unrecognized command or argument 'yes'", "`resnet train --help`"),
        ["unknown_command"] = _ => new(["frob"], 2, "'frob'", "`resnet --help`"),
    };

    public static TheoryData<string> Names() => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public void HostileInput_ClearMessage_NoTrace_UserFilesKept(string name)
    {
        var h = H;
        var before = h.UserFiles();
        var c = Cases[name](h);
        var (code, output, error) = Cli.Run(c.Args);
        string all = output + error;
        log.WriteLine($"resnet {string.Join(' ', c.Args)}\nexit {code}\n{error}");
        Assert.True(c.Code == code, $"exit {code}, expected {c.Code}\nstdout: {output}\nstderr: {error}");
        foreach (var n in c.Names) Assert.True(all.Contains(n, StringComparison.Ordinal), $"the message does not name '{n}':\n{all}");
        Assert.DoesNotContain("   at ", all);
        Assert.DoesNotContain("Exception raised from", all);
        Assert.DoesNotContain("frame #", all);
        c.Check?.Invoke(output, error);
        Assert.Equal(before, h.UserFiles());
    }

    [Fact]
    public void Verbose_ShowsTheTrace()
    {
        var (code, _, error) = Cli.Run("evaluate", "--model", Gone + "/model.dat", "--data", H.Data, "--verbose");
        Assert.Equal(2, code);
        Assert.Contains("error: ", error);
        Assert.Contains("   at ", error);
    }

    [Fact]
    public void CaseCount_AtLeastSixty() => Assert.True(Cases.Count >= 60, $"{Cases.Count} cases");
}

/// <summary>An interrupted run in a folder that holds a completed model writes its weights beside it, not over it.</summary>
public sealed class InterruptedRunTests
{
    [Fact]
    public void InterruptedRun_OverACompletedModel_WritesIntoInterrupted_AndKeepsTheModel()
    {
        var h = Hostile.Shared.Value;
        string output = h.Fresh("completed");
        string[] args = ["train", "--data", h.Train, "--output", output, "--arch", "resnet8", "--epochs", "1", "--batch-size", "10"];
        Assert.Equal(0, Cli.Run(args).Code);
        string[] kept = ["model.dat", "model.json", "model.onnx", "metrics.json", "metrics.csv", "curves.svg"];
        var before = kept.ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(output, f)));

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel(); // as if Ctrl-C came before the first step
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Program.Run(args, o, e, cancelled.Token);

        Assert.Equal(130, code);
        foreach (var f in kept) Assert.Equal(before[f], File.ReadAllBytes(Path.Combine(output, f)));
        string interrupted = Path.Combine(output, "interrupted");
        Assert.Contains("\"InterruptedAtIteration\": 0", File.ReadAllText(Path.Combine(interrupted, "model.json")));
        Assert.True(File.Exists(Path.Combine(interrupted, "model.onnx")));
        Assert.Contains($"files in {interrupted}", o.ToString());
        Assert.Contains("--resume", o.ToString());
    }

    [Theory]
    [InlineData("evaluate")]
    [InlineData("predict")]
    public void CancelledEvaluateAndPredict_StopCleanly(string command)
    {
        var h = Hostile.Shared.Value;
        string[] args = command == "evaluate"
            ? ["evaluate", "--model", h.ModelDat, "--data", h.Data, "--output", h.Fresh("eval")]
            : ["predict", "--model", h.ModelOnnx, h.Train];
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(130, Program.Run(args, o, e, cancelled.Token));
        Assert.Equal("Interrupted.", e.ToString().Trim());
        Assert.DoesNotContain("   at ", o.ToString() + e);
    }
}
