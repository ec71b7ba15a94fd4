"""The hardware seam: the bottom layer of the host side.

``seam`` holds the protocol every backend implements and the types that cross it (Kind,
Cause, Priv, Csr, Trap); ``backends`` is the registry that names the backends. Nothing
here has behaviour of a machine, and nothing here imports anything of the project above
it: the kernel model and the workloads reach hardware only through these two modules.
"""
