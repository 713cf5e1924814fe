# Module load/unload (sourced).  module_insert KO sets MODULE_NAME from /proc/modules (the file
# name may differ from the module name, e.g. a bug build ipvs_gue_bug.ko registering ipvs_gue).
MODULE_NAME=
module_insert() { # KO
  local before
  before=$(cut -d' ' -f1 /proc/modules | sort)
  insmod "$1" || return 1
  MODULE_NAME=$(cut -d' ' -f1 /proc/modules | sort | grep -vxF "$before" | head -n1)
  [ -n "$MODULE_NAME" ] || MODULE_NAME=$(basename "$1" .ko)
}
module_remove() { [ -n "$MODULE_NAME" ] && rmmod "$MODULE_NAME"; }
