echo "mode=$SUSHI_M"
if sushi_find; then echo "running=yes"; echo "pid=$SUSHI_P"
  echo "cmdline=$(tr '\000' ' ' 2>/dev/null </proc/$SUSHI_P/cmdline | cut -c1-300)"
else echo "running=no"; fi
echo "release=$(basename "$(readlink "$CURRENT" 2>/dev/null)" 2>/dev/null)"
sushi_config_of "$CURRENT"
echo "config=$SUSHI_CFG"
