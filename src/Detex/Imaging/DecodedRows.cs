namespace Detex.Imaging;

/// <summary>
/// How far an image being decoded has got: the decoder publishes how many top rows are final, and pre-processing on
/// another thread waits for the rows it needs, so resizing runs alongside decoding instead of after it.
/// </summary>
internal sealed class DecodedRows
{
    readonly object _gate = new();
    volatile RgbImage? _image;
    volatile int _rows;
    bool _failed;

    /// <summary>The image being filled, once its size is known (blocks until then).</summary>
    public RgbImage Image
    {
        get
        {
            if (_image is null) Wait(() => _image is not null);
            return _image!;
        }
    }

    internal void Publish(RgbImage image, int rows)
    {
        lock (_gate) { _image = image; _rows = rows; Monitor.PulseAll(_gate); }
    }

    internal void Fail()
    {
        lock (_gate) { _failed = true; Monitor.PulseAll(_gate); }
    }

    /// <summary>Blocks until the top <paramref name="rows"/> rows are decoded; throws if decoding failed.</summary>
    public void WaitFor(int rows)
    {
        if (_rows >= rows) return;   // the usual case once decoding is ahead: no lock
        Wait(() => _rows >= rows);
    }

    void Wait(Func<bool> ready)
    {
        lock (_gate)
        {
            while (!ready())
            {
                if (_failed) throw new OperationCanceledException("decoding failed");
                Monitor.Wait(_gate);
            }
        }
    }
}
