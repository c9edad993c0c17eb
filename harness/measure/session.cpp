#include "harness/measure/session.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace megabench {

TrainSession::TrainSession(ByteModel& model, const RunSettings& run, int64_t total_steps)
    : model_(model),
      device_(run.torch_device()),
      dtype_(run.scalar_type()),
      grad_clip_(run.train.grad_clip),
      train_(run.train),
      total_steps_(total_steps),
      stop_on_nonfinite_(run.train.stop_on_nonfinite),
      scaler_(run.scalar_type() == torch::kFloat16) {
  model_.module().train();
  opt_ = make_adamw(model_.module().parameters(),
                    torch::optim::AdamWOptions(run.train.lr)
                        .weight_decay(run.train.weight_decay)
                        .betas({run.train.betas.at(0), run.train.betas.at(1)}),
                    run.train.optimizer == "adamw_fused");
}

double TrainSession::lr() const {
  return static_cast<const torch::optim::AdamWOptions&>(opt_->param_groups().front().options())
      .lr();
}

void TrainSession::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive opt;
  opt_->save(opt);
  archive.write("optimizer", opt);
  archive.write("steps", torch::tensor(steps_, torch::kLong));
}

void TrainSession::load(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive opt;
  archive.read("optimizer", opt);
  opt_->load(opt);
  torch::Tensor steps;
  archive.read("steps", steps);
  steps_ = steps.item<int64_t>();
}

torch::Tensor TrainSession::step(const torch::Tensor& x) {
  const double lr = scheduled_lr(train_, steps_, total_steps_);
  for (auto& group : opt_->param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }
  opt_->zero_grad();
  torch::Tensor loss;
  {
    AutocastGuard autocast(device_, dtype_);
    loss = model_.loss(x);
  }
  ++steps_;
  if (stop_on_nonfinite_) {
    const double v = loss.detach().item<double>();
    if (!std::isfinite(v)) {
      throw std::runtime_error("training loss is " + std::to_string(v) + " at step " +
                               std::to_string(steps_) +
                               " (train.stop_on_nonfinite: false keeps going)");
    }
  }
  scaler_.scale(loss).backward();
  if (scaler_.unscale(*opt_)) {
    if (grad_clip_ > 0) clip_grad_norm(model_.module().parameters(), grad_clip_);
    opt_->step();
  }
  return loss.detach();
}

EvalScope::EvalScope(ByteModel& model, const RunSettings& run)
    : autocast_(run.torch_device(), run.scalar_type()) {
  model.module().eval();
}

void check_finite(const torch::Tensor& loss, const std::string& where) {
  double v = loss.item<double>();
  if (!std::isfinite(v)) throw std::runtime_error(where + ": loss is " + std::to_string(v));
}

}  // namespace megabench
