namespace ResNet.Trainer.Data;

/// <summary>Seeded, stratified train/validation splits (paper section 4.2: 45k/5k of CIFAR-10's training set).</summary>
public static class DatasetSplit
{
    /// <summary>
    /// Splits <paramref name="source"/> so each class gives the same fraction to validation (rounded per class,
    /// at least one image per class when the class has two or more). The same seed gives the same split.
    /// </summary>
    /// <param name="source">Images to split.</param>
    /// <param name="validationFraction">Share of each class held out, in (0, 1).</param>
    /// <param name="seed">Seed of the shuffle within each class.</param>
    public static (SubsetSource Train, SubsetSource Validation) Stratified(IImageSource source, double validationFraction, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (validationFraction is <= 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be between 0 and 1 (e.g. 0.1 for the paper's 45k/5k).");
        var byClass = Enumerable.Range(0, source.Count).GroupBy(source.LabelOf).OrderBy(g => g.Key);
        var rng = new Random(seed);
        var train = new List<int>();
        var validation = new List<int>();
        foreach (var group in byClass)
        {
            int[] members = group.ToArray();
            rng.Shuffle(members);
            int held = (int)Math.Round(members.Length * validationFraction, MidpointRounding.AwayFromZero);
            if (held == 0 && members.Length >= 2) held = 1;
            if (held == members.Length) held = members.Length - 1;
            validation.AddRange(members.Take(held));
            train.AddRange(members.Skip(held));
        }
        train.Sort();
        validation.Sort();
        return (new SubsetSource(source, train), new SubsetSource(source, validation));
    }

    /// <summary>The first <paramref name="perClass"/> images of each class (in source order): a small balanced subset.</summary>
    public static SubsetSource Balanced(IImageSource source, int perClass)
    {
        var counts = new int[source.ClassNames.Count];
        var chosen = new List<int>();
        for (int i = 0; i < source.Count; i++)
            if (counts[source.LabelOf(i)]++ < perClass) chosen.Add(i);
        return new SubsetSource(source, chosen);
    }
}
