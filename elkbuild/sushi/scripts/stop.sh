sushi_find; was=$SUSHI_P
sushi_stop || { echo "reason=could not stop Sushi"; return 1; }
echo "mode=$SUSHI_M"; echo "was=$was"
