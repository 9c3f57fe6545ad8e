using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.MLNet.Transforms;

internal static class SchemaShapes
{
    /// <summary>The input shape plus a score vector and a predicted key for the classes in <paramref name="classNames"/> (shadowing same-named columns).</summary>
    public static SchemaShape WithScores(SchemaShape input, string scoreColumn, string predictedLabelColumn, IReadOnlyList<string> classNames)
    {
        var emptyInput = new DataViewSchema.Builder().ToSchema();
        var added = FromSchema(ScoredDataView.OutputSchema(emptyInput, classNames, scoreColumn, predictedLabelColumn));
        return new SchemaShape(input.Where(c => c.Name != scoreColumn && c.Name != predictedLabelColumn).Concat(added));
    }

    // SchemaShape.Column has no public constructor and SchemaShape.Create(DataViewSchema) is internal; ML.NET's own
    // estimators use the latter, so this calls it. If a future ML.NET renames it, the message says so.
    private static readonly System.Reflection.MethodInfo? CreateShape = typeof(SchemaShape).GetMethod("Create",
        System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public, [typeof(DataViewSchema)]);

    /// <summary>The shape of a schema.</summary>
    public static SchemaShape FromSchema(DataViewSchema schema) =>
        CreateShape?.Invoke(null, [schema]) as SchemaShape
        ?? throw new InvalidOperationException("This ML.NET version has no SchemaShape.Create(DataViewSchema); ResNet.MLNet needs Microsoft.ML 5.0.x.");

    /// <summary>Finds a column of a schema shape by name (the last one wins, as in a schema).</summary>
    public static bool Has(SchemaShape shape, string name, out SchemaShape.Column column)
    {
        bool found = false;
        column = default;
        foreach (var c in shape)
            if (c.Name == name) { column = c; found = true; }
        return found;
    }
}
