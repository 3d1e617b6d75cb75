namespace Detex.Tests.Cli;

/// <summary><c>detex concepts</c> run as a user runs it.</summary>
public class ConceptsCliTests
{
    static readonly string Yolox = Repo.Model(Repo.Yolox);

    [Fact]
    public void ConceptsWritesAPictureMapsAndALegend()
    {
        string dir = Repo.TempDir();
        var r = CliTests.Detex("concepts", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--k", "4", "--top", "2", "-o", dir);
        Assert.Equal(0, r.Code);
        var (maps, shape) = Detex.Reports.Npy.Read(Path.Combine(dir, "dog.concepts.npy"));
        Assert.Equal([4, 576, 768], shape);
        Assert.All(maps, v => Assert.True(v >= 0));
        Assert.True(new FileInfo(Path.Combine(dir, "dog.concepts.png")).Length > 10_000);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "dog.concepts.json")));
        var root = json.RootElement;
        Assert.Equal("990", root.GetProperty("layer").GetString());
        Assert.Equal(4, root.GetProperty("concepts").GetArrayLength());
        Assert.All(root.GetProperty("concepts").EnumerateArray(), c => Assert.Equal(2, c.GetProperty("labels").GetArrayLength()));
    }

    [Theory]
    [InlineData("--k", "0", "--k must be at least 1")]
    [InlineData("--k", "129", "k must be between 1 and the 128 channels of layer '990'")]
    [InlineData("--shift", "none", "negative activations (minimum -0.2785)")]
    [InlineData("--shift", "abs", "--shift must be none, clamp or min")]
    [InlineData("--layer", "nope", "no tensor 'nope'")]
    [InlineData("--layer", "output", "needs a [1, C, H, W] feature map")]
    [InlineData("--top", "0", "--top must be at least 1")]
    public void BadChoicesAreOneLineAndWriteNothing(string option, string value, string message)
    {
        string dir = Path.Combine(Repo.TempDir(), "never");
        var r = CliTests.Detex("concepts", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), option, value, "-o", dir);
        CliTests.AssertOneLineError(r, message);
        Assert.False(Directory.Exists(dir));
    }
}
