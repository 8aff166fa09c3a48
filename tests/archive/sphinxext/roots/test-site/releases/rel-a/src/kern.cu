// a made-up kernel file
#include "kern.cuh"
void Layer::fpropActs(int inpIdx, float scale) {
	if (scale == 0) {
		getActs().scale(scale);
	}
}

void Layer::bpropActs(int inpIdx) {
    return;
}
