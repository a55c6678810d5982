package ipmisim

import "syscall"

// procAttr starts ipmi_sim in its own session, killed if its parent dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
}
