// Names the calling thread (what top -H, gdb and /proc/<pid>/task/<tid>/comm show), so a hung or
// busy rank's threads say whose they are. Linux keeps 15 characters; longer names are cut there.
#pragma once

namespace eccl {

// Never fails: naming is for people reading stacks, not something to stop for.
void nameThisThread(const char* name);

}  // namespace eccl
