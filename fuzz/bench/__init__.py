"""`busrig bench`: the bus performance questions of the kernel-bus debate, and the rig's own speed."""
