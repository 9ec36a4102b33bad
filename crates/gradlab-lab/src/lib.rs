//! gradlab-lab
