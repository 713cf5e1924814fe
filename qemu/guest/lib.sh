# Everything a guest test script needs: . /guest/lib.sh
. /guest/tap.sh
. /guest/clock.sh
. /guest/topology.sh
. /guest/bg.sh
. /guest/ipvs.sh
. /guest/drops.sh
. /guest/module.sh
