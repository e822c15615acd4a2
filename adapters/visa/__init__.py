"""VISA/SCPI instruments through pyvisa with the pyvisa-py backend."""
