"""The single symbolic source of the project.

Every layer is defined once, by its forward expression, in one of three modules:

- ``derive.activations``: the elementwise nonlinearities f and g, a catalogue of rows,
- ``derive.linear``: the affine layer ``W x + b``,
- ``derive.losses``: MSE and BCE, with the reduction as an explicit parameter.

SymPy differentiates each forward expression; ``derive.rewrites``, one stage before printing,
turns a raw derivative that is numerically poor into an equal one that is not;
``derive.torch_printer`` and ``derive.latex_printer`` print the results; ``python -m derive``
(``make derive``) renders them through ``templates/`` into ``generated/``, and
``python -m derive explain`` shows each step for one activation.
"""
