# CFG: the config to start with (empty: the current release's); RESTART: yes|no
elk_cfg_given=$CFG
[ -n "$CFG" ] || { sushi_config_of "$CURRENT"; CFG=$SUSHI_CFG; }
if [ "$RESTART" = yes ]; then sushi_stop
elif sushi_find; then
  # a config asked for must not be silently ignored: Sushi keeps its own
  if [ -n "$elk_cfg_given" ]; then
    echo "reason=Sushi already runs (pid $SUSHI_P); it was not started with $elk_cfg_given"
    echo "already=$SUSHI_P"; return 5
  fi
  echo "already=$SUSHI_P"; echo "mode=$SUSHI_M"; return 0
fi
sushi_start_configured "$CFG" || return 1
echo "mode=$SUSHI_M"
echo "config=$CFG"
sushi_health "$CURRENT/sushi-plugins" || return 1
