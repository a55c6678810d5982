//go:build !linux

package ipmisim

import "syscall"

func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
