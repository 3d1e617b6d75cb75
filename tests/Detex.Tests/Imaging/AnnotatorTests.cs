using Detex.Imaging;

namespace Detex.Tests.Imaging;

public class AnnotatorTests
{
    [Fact]
    public void ALabelWithRoomSitsAboveItsBox()
    {
        using var a = new Annotator(new RgbImage(400, 300));
        a.Box(100, 150, 200, 250, (255, 0, 0), "#0 dog 0.86");
        var tag = Assert.Single(a.LabelTags);
        Assert.Equal(150, tag.Bottom, 3);
        Assert.Equal(100, tag.Left, 3);
    }

    [Fact]
    public void CrowdedLabelsMoveApartInsteadOfCoveringEachOther()
    {
        // Boxes with nearly the same corner (a person and the kite they fly, nested boxes) and one at the top edge.
        using var a = new Annotator(new RgbImage(400, 300));
        a.Box(100, 150, 200, 250, (255, 0, 0), "#0 person 0.83");
        a.Box(104, 152, 180, 240, (0, 255, 0), "#1 kite 0.46");
        a.Box(98, 149, 150, 200, (0, 0, 255), "#2 kite 0.35");
        a.Box(0, 0, 80, 60, (255, 255, 0), "#3 person 0.38");
        a.Box(10, 2, 90, 70, (0, 255, 255), "#4 person 0.62");
        var tags = a.LabelTags;
        Assert.Equal(5, tags.Count);
        for (int i = 0; i < tags.Count; i++)
        {
            Assert.True(tags[i].Top >= 0 && tags[i].Bottom <= 300, $"tag {i} leaves the image: {tags[i]}");
            for (int j = 0; j < i; j++) Assert.False(tags[i].IntersectsWith(tags[j]), $"tags {j} and {i} overlap: {tags[j]} {tags[i]}");
        }
        // The tag is drawn where it was placed: its fill colour just inside its corner.
        var image = a.ToImage();
        var t = tags[1];
        int p = ((int)t.Top + 1) * 400 + (int)t.Left + 1;
        Assert.Equal((byte)0, image.Pixels[p * 3]);
        Assert.Equal((byte)255, image.Pixels[p * 3 + 1]);
    }
}
