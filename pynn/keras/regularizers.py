"""``keras.regularizers``: pynn's L1, L2 and L1L2 (pynn.regularizers), with
Keras 3's names, defaults and string forms ("l1", "l2", "l1_l2").

The penalty joins the loss that fit and evaluate report, its gradient the
compiled step's gradient pass.  OrthogonalRegularizer is not in pynn.
"""
from ..regularizers import L1, L1L2, L2, Regularizer, deserialize, get, l1, l1_l2, l2, serialize
from ._missing import Missing

OrthogonalRegularizer = Missing("keras.regularizers.OrthogonalRegularizer",
                                "its penalty couples a kernel's rows, which the compiled "
                                "gradient pass does not compute")

__all__ = ["L1", "L1L2", "L2", "OrthogonalRegularizer", "Regularizer", "deserialize", "get",
           "l1", "l1_l2", "l2", "serialize"]
